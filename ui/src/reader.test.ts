// The reading pane: indicators in the app's chrome, mail HTML only in a frame
// sandboxed without scripts, links behind a confirmation, attachments, reply.
import { expect, test } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { MockBackend } from "./mock";

async function openMessage(id: number) {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 100 });
  const user = userEvent.setup();
  render(App, { backend });
  const row = await waitFor(() => {
    const found = document.querySelector<HTMLElement>(`[data-testid=message-row][data-id="${id}"]`);
    if (!found) throw new Error("row not there yet");
    return found;
  });
  await user.click(row);
  await screen.findByTestId("reader-subject");
  return { backend, user };
}

test("an encrypted message: encryption and signature in the chrome, HTML in a sandboxed frame", async () => {
  await openMessage(1);

  const encryption = screen.getByTestId("reader-encryption");
  expect(encryption.textContent).toContain("Encrypted — only you and the recipients can read it");
  expect(encryption.dataset.state).toBe("decrypted");
  expect(encryption.querySelector("[data-icon=lock]")).not.toBeNull();
  const signature = screen.getByTestId("reader-signature");
  expect(signature.textContent).toContain("Signed by alice@example.org — key confirmed");
  expect(signature.classList.contains("sig-confirmed")).toBe(true);

  const body = screen.getByTestId("reader-body");
  expect(body.tagName).toBe("IFRAME");
  const frame = body as HTMLIFrameElement;
  expect(frame.getAttribute("sandbox")).toBe("");
  expect(frame.getAttribute("sandbox")).not.toContain("allow-scripts");
  expect(frame.getAttribute("title")).toBe("Message content");
  // The document comes by URL (the app's own scheme in the real app; a data: URL in the
  // mock), never as markup of the page: no srcdoc at all.
  await waitFor(() => expect(frame.getAttribute("src")).toBeTruthy());
  expect(frame.hasAttribute("srcdoc")).toBe(false);
  const doc = decodeURIComponent(frame.getAttribute("src") ?? "");
  expect(doc).toContain("<p>Hello Ada,</p>");
  // The indicators are never inside the mail's document.
  expect(doc).not.toContain("Encrypted —");
  expect(doc).not.toContain("Signed by");
  // No mail markup leaked into the app's own DOM.
  expect(document.body.textContent).not.toContain("Hello Ada,");
});

test("a plain-text message shows its text in a wrapped block, not a frame", async () => {
  await openMessage(2);
  const body = screen.getByTestId("reader-body");
  expect(body.tagName).not.toBe("IFRAME");
  expect(body.textContent).toContain("See the report: https://example.org/report");
  expect(screen.getByTestId("reader-encryption").textContent).toContain("Not encrypted");
});

test("remote content is blocked until allowed for the sender", async () => {
  const { backend, user } = await openMessage(1);
  expect(screen.getByText(/Remote content blocked/)).toBeTruthy();
  await user.click(screen.getByRole("button", { name: "Allow from this sender" }));
  await waitFor(() => expect(screen.queryByText(/Remote content blocked/)).toBeNull());
  expect(backend.names()).toContain("allowRemoteContent");
});

test("a link opens only after the user confirms it", async () => {
  const { backend, user } = await openMessage(1);
  await user.click(screen.getByRole("button", { name: "Open link https://example.org/report" }));
  const dialog = screen.getByRole("dialog", { name: "Open this link?" });
  expect(within(dialog).getByText("https://example.org/report")).toBeTruthy();
  expect(backend.names()).not.toContain("openLink");

  await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
  expect(screen.queryByRole("dialog")).toBeNull();
  expect(backend.names()).not.toContain("openLink");

  await user.click(screen.getByRole("button", { name: "Open link https://example.org/report" }));
  await user.click(screen.getByRole("button", { name: "Open in browser" }));
  await waitFor(() => expect(backend.calls.find((c) => c.name === "openLink")?.args).toEqual(["https://example.org/report"]));
});

test("attachments are saved through the backend", async () => {
  const { backend, user } = await openMessage(1);
  await user.click(screen.getByRole("button", { name: "Save report.pdf" }));
  expect(await screen.findByText("report.pdf saved.")).toBeTruthy();
  expect(backend.calls.find((c) => c.name === "saveAttachment")?.args).toEqual([1, 0]);
});

test("Reply opens compose with the sender, Re: subject and the quoted text", async () => {
  const { user } = await openMessage(1);
  await user.click(screen.getByRole("button", { name: "Reply" }));
  const subject = await screen.findByTestId<HTMLInputElement>("compose-subject");
  expect(subject.value).toMatch(/^Re: Lunch on Friday\? #1$/);
  expect(screen.getByTestId<HTMLTextAreaElement>("compose-body").value).toContain("> Hello Ada,");
  const chips = [...document.querySelectorAll<HTMLElement>("[data-testid=recipient-chip]")];
  expect(chips.map((c) => c.dataset.address)).toEqual(["Bob Builder <bob@example.org>"]);
});

test("a mailto link opens compose to that address, without leaving the app", async () => {
  const { backend, user } = await openMessage(1);
  await user.click(screen.getByRole("button", { name: "Write to alice@example.org" }));
  await screen.findByTestId("compose-subject");
  const chips = [...document.querySelectorAll<HTMLElement>("[data-testid=recipient-chip]")];
  expect(chips.map((c) => c.dataset.address)).toEqual(["alice@example.org"]);
  expect(backend.names()).not.toContain("openLink");
});

test("the open message is opened again when its sender's key arrives", async () => {
  const { backend } = await openMessage(1);
  const opened = () => backend.calls.filter((c) => c.name === "openMessage" && c.args[0] === 1).length;
  expect(opened()).toBe(1);
  // Another message changing leaves this one alone; this one changing opens it again.
  backend.emitMessageChanged({ id: 2 });
  backend.emitMessageChanged({ id: 1 });
  await waitFor(() => expect(opened()).toBe(2));
  await screen.findByTestId("reader-subject");
});
