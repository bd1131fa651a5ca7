// Compose against the in-memory backend: recipient chips and key marks, the
// Encrypt box that follows the keys, drafts saved while typing, and sending.
import { expect, test } from "vitest";
import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { MockBackend } from "./mock";
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
  expect(backend.drafts.size).toBe(1);
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
  await waitFor(() => expect(screen.getByText("Not sent: Sealpost is locked. Unlock it to continue.")).toBeTruthy());
  expect(screen.getByTestId<HTMLInputElement>("compose-subject").value).toBe("Keep me");
});

test("attachments are picked, listed with their size, and removed", async () => {
  const { user } = await openCompose();
  await user.click(screen.getByRole("button", { name: "Attach files…" }));
  expect(await screen.findByText(/report\.pdf \(48 KB\)/)).toBeTruthy();
  await user.click(screen.getByRole("button", { name: "Remove attachment report.pdf" }));
  expect(screen.queryByText(/report\.pdf/)).toBeNull();
});
