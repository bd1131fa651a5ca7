// Compose against the in-memory backend: recipient chips and key marks, the
// Encrypt box that follows the keys, drafts saved while typing, and sending.
import { expect, test } from "vitest";
import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { MOCK_ACCOUNT, MockBackend } from "./mock";
import type { ComposeInput } from "./backend";

async function openCompose(draftDelayMs = 1500, delayMs = 0) {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10, delayMs });
  const user = userEvent.setup();
  render(App, { backend, draftDelayMs });
  await user.click(await screen.findByRole("button", { name: "Compose" }));
  const encrypt = await screen.findByTestId<HTMLInputElement>("compose-encrypt");
  return { backend, user, encrypt };
}

function note(): string {
  return screen.getByTestId("compose-encrypt-note").textContent ?? "";
}

test("Encrypt turns itself on when every recipient has a key", async () => {
  const { user, encrypt } = await openCompose();
  expect(encrypt.checked).toBe(false);
  expect(encrypt.disabled).toBe(true);
  expect(note()).toBe("Add a recipient to encrypt.");

  await user.type(screen.getByTestId("compose-to"), "alice@example.org, carol@example.org,");
  await waitFor(() => expect(encrypt.checked).toBe(true));
  expect(encrypt.disabled).toBe(false);
  const chips = [...document.querySelectorAll<HTMLElement>("[data-testid=recipient-chip]")];
  expect(chips.map((c) => c.textContent?.replace(/\s+/g, " ").trim())).toEqual([
    "alice@example.org key confirmed",
    "carol@example.org key known",
  ]);
  expect(screen.getByTestId("compose-send").textContent?.trim()).toBe("Send encrypted");
});

test("Encrypt cannot be on, and says who lacks a key, when a recipient has none", async () => {
  const { user, encrypt } = await openCompose();
  await user.type(screen.getByTestId("compose-to"), "alice@example.org,");
  await waitFor(() => expect(encrypt.checked).toBe(true));

  await user.type(screen.getByTestId("compose-to"), "bob@example.org,");
  await waitFor(() => expect(note()).toBe("No key for bob@example.org"));
  expect(encrypt.checked).toBe(false);
  expect(encrypt.disabled).toBe(true);
  expect(encrypt.getAttribute("aria-describedby")).toBe("compose-encrypt-note");
  expect(screen.getByText("no key")).toBeTruthy();

  // Removing Bob lets it turn itself back on.
  await user.click(screen.getByRole("button", { name: "Remove bob@example.org" }));
  await waitFor(() => expect(encrypt.checked).toBe(true));
});

test("once the user unticks Encrypt, it stays as the user left it", async () => {
  const { user, encrypt } = await openCompose();
  await user.type(screen.getByTestId("compose-to"), "alice@example.org,");
  await waitFor(() => expect(encrypt.checked).toBe(true));
  await user.click(encrypt);
  expect(encrypt.checked).toBe(false);
  await user.type(screen.getByTestId("compose-to"), "carol@example.org,");
  await waitFor(() => expect(document.querySelectorAll("[data-testid=recipient-chip]").length).toBe(2));
  await waitFor(() => expect(encrypt.disabled).toBe(false));
  expect(encrypt.checked).toBe(false);
});

test("a draft is saved after typing stops, and the draft id is reused", async () => {
  const { backend, user } = await openCompose(1500);
  await user.type(screen.getByTestId("compose-subject"), "Plans");
  expect(backend.names()).not.toContain("saveDraft");

  await waitFor(() => expect(backend.names()).toContain("saveDraft"), { timeout: 3000 });
  const first = backend.calls.find((c) => c.name === "saveDraft")?.args[0] as ComposeInput;
  expect(first.subject).toBe("Plans");
  expect(first.draftId).toBeNull();
  await waitFor(() => expect(screen.getByTestId("compose-draft-status").textContent).toMatch(/^Draft saved at/));

  await user.type(screen.getByTestId("compose-body"), "See you.");
  await waitFor(() => expect(backend.names().filter((n) => n === "saveDraft")).toHaveLength(2), { timeout: 3000 });
  const second = backend.calls.filter((c) => c.name === "saveDraft")[1]?.args[0] as ComposeInput;
  expect(second.draftId).toBe(1);
  expect(second.body).toBe("See you.");
  expect(backend.savedDrafts.size).toBe(1);
});

test("a saved draft is reopened with its attachments and updated in place, or deleted", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  const base: ComposeInput = {
    accountId: MOCK_ACCOUNT,
    to: ["alice@example.org"],
    cc: [],
    bcc: ["carol@example.org"],
    subject: "Quarterly plan",
    body: "Alice, the numbers:",
    encrypt: true,
    sign: true,
    attachments: ["file-7"],
    draftId: null,
    inReplyTo: null,
  };
  const planId = (await backend.saveDraft(base))!;
  const noteId = (await backend.saveDraft({ ...base, subject: "Loose note", attachments: [], bcc: [] }))!;
  const user = userEvent.setup();
  render(App, { backend, draftDelayMs: 300 });
  await user.click(await screen.findByRole("button", { name: "Compose" }));

  await screen.findByTestId("compose-encrypt");
  const list = await screen.findByTestId("compose-drafts");
  expect(list.textContent).toContain("Saved drafts (2)");
  await user.click(screen.getByRole("button", { name: "Open draft Quarterly plan" }));
  await waitFor(() => expect(screen.getByTestId<HTMLInputElement>("compose-subject").value).toBe("Quarterly plan"));
  expect(screen.getByTestId<HTMLTextAreaElement>("compose-body").value).toBe("Alice, the numbers:");
  expect(screen.getByRole("list", { name: "Attachments" }).textContent).toContain("report.pdf");
  expect(screen.getByTestId("compose-bcc")).toBeTruthy();
  // The open draft is not offered again; the other one still is.
  expect(screen.getByTestId("compose-drafts").textContent).toContain("Saved drafts (1)");

  await user.type(screen.getByTestId("compose-body"), " up 4 %");
  await waitFor(() => expect(backend.savedDrafts.get(planId)?.body).toBe("Alice, the numbers: up 4 %"), { timeout: 3000 });
  expect(backend.savedDrafts.get(planId)?.attachments).toEqual(["file-7"]);
  expect(backend.savedDrafts.size).toBe(2);

  await user.click(screen.getByRole("button", { name: "Delete draft Loose note" }));
  await user.click(await screen.findByRole("button", { name: "Delete" }));
  await waitFor(() => expect(backend.savedDrafts.has(noteId)).toBe(false));
  await waitFor(() => expect(screen.queryByTestId("compose-drafts")).toBeNull());
});

test("Send queues the message and reports the outbox steps in words", async () => {
  const { backend, user } = await openCompose();
  await user.type(screen.getByTestId("compose-to"), "alice@example.org");
  await user.type(screen.getByTestId("compose-subject"), "Hello");
  await user.type(screen.getByTestId("compose-body"), "Hi Alice");
  await user.click(screen.getByTestId("compose-send"));

  const status = screen.getByTestId("compose-status");
  await waitFor(() => expect(status.textContent).toBe("Sent"));
  const sent = backend.calls.find((c) => c.name === "send")?.args[0] as ComposeInput;
  expect(sent.to).toEqual(["alice@example.org"]);
  expect(sent.subject).toBe("Hello");
  expect(sent.sign).toBe(true);
  expect(sent.encrypt).toBe(true);
  expect(screen.getByTestId<HTMLInputElement>("compose-subject").value).toBe("");
});

test("Send right after typing an address waits for its key and encrypts", async () => {
  const { backend, user } = await openCompose(1500, 40);
  await user.type(screen.getByTestId("compose-to"), "carol@example.org");
  await user.click(screen.getByTestId("compose-send"));
  await waitFor(() => expect(backend.names()).toContain("send"), { timeout: 3000 });
  const sent = backend.calls.find((c) => c.name === "send")?.args[0] as ComposeInput;
  expect(sent.to).toEqual(["carol@example.org"]);
  expect(sent.encrypt).toBe(true);
});

test("a failed send says it stays in the outbox", async () => {
  const { user } = await openCompose();
  await user.type(screen.getByTestId("compose-to"), "fail@example.org,");
  await user.click(screen.getByTestId("compose-send"));
  await waitFor(() =>
    expect(screen.getByTestId("compose-status").textContent).toBe(
      "Failed: SMTP smtp.example.org: 451 try again later — it stays in the outbox and will be retried",
    ),
  );
});

test("a refused send keeps everything typed", async () => {
  const { backend, user } = await openCompose();
  backend.state = "locked";
  await user.type(screen.getByTestId("compose-to"), "alice@example.org,");
  await user.type(screen.getByTestId("compose-subject"), "Keep me");
  await user.click(screen.getByTestId("compose-send"));
  await waitFor(() => expect(screen.getByText("Not sent: The profile is locked; unlock it first.")).toBeTruthy());
  expect(screen.getByTestId<HTMLInputElement>("compose-subject").value).toBe("Keep me");
});

test("attachments are picked, listed with their size, and removed", async () => {
  const { user } = await openCompose();
  await user.click(screen.getByRole("button", { name: "Attach files…" }));
  expect(await screen.findByText(/report\.pdf \(48 KB\)/)).toBeTruthy();
  await user.click(screen.getByRole("button", { name: "Remove attachment report.pdf" }));
  expect(screen.queryByText(/report\.pdf/)).toBeNull();
});

test("a send that may have been sent waits in the outbox until the user answers", async () => {
  const { backend, user } = await openCompose();
  await user.type(screen.getByTestId("compose-to"), "doubt@example.org");
  await user.type(screen.getByTestId("compose-subject"), "Contract");
  await user.click(screen.getByTestId("compose-send"));
  const status = screen.getByTestId("compose-status");
  await waitFor(() => expect(status.textContent).toMatch(/^It may have been sent/));

  const entry = await screen.findByTestId("outbox-entry");
  expect(entry.getAttribute("data-state")).toBe("inDoubt");
  expect(entry.textContent).toContain("Contract");
  expect(entry.textContent).toContain("not in Sent");

  // Discard asks first; cancelling keeps it.
  await user.click(screen.getByRole("button", { name: "Discard: Contract" }));
  await user.click(await screen.findByRole("button", { name: "Cancel" }));
  expect(backend.names()).not.toContain("discardOutboxEntry");

  await user.click(screen.getByRole("button", { name: "Send again: Contract" }));
  await waitFor(() => expect(backend.names()).toContain("resendOutboxEntry"));
  await waitFor(() => expect(screen.queryByTestId("compose-outbox")).toBeNull());
  expect(backend.outboxEntries).toEqual([]);
});

test("discarding an entry in doubt removes it after the user confirms", async () => {
  const { backend, user } = await openCompose();
  await user.type(screen.getByTestId("compose-to"), "doubt@example.org");
  await user.type(screen.getByTestId("compose-subject"), "Invoice");
  await user.click(screen.getByTestId("compose-send"));
  await screen.findByTestId("outbox-entry");
  await user.click(screen.getByRole("button", { name: "Discard: Invoice" }));
  await user.click(await screen.findByRole("button", { name: "Discard" }));
  await waitFor(() => expect(screen.queryByTestId("compose-outbox")).toBeNull());
  expect(backend.names()).toContain("discardOutboxEntry");
  expect(backend.names()).not.toContain("resendOutboxEntry");
});
