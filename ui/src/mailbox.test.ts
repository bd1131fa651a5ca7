// The mailbox against the in-memory backend: the virtualized list at 100,000
// messages, paging on scroll, keyboard, flags, search and live updates.
import { expect, test } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { computeAccessibleName } from "dom-accessibility-api";
import App from "./App.svelte";
import { ROW_HEIGHT } from "./lib/pages";
import { MOCK_ACCOUNT, MockBackend } from "./mock";

function rows(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>("[data-testid=message-row]")];
}

async function openMailbox(inboxSize: number) {
  const backend = new MockBackend({ state: "unlocked", inboxSize });
  render(App, { backend });
  await waitFor(() => expect(rows().length).toBeGreaterThan(0));
  return backend;
}

function messageCalls(backend: MockBackend): unknown[][] {
  return backend.calls.filter((c) => c.name === "messages").map((c) => c.args);
}

test("100,000 messages put only a window of rows in the DOM", async () => {
  const backend = await openMailbox(100_000);

  expect(rows().length).toBeLessThan(100);
  expect(rows()[0]?.dataset.id).toBe("1");
  const spacer = screen.getByTestId("message-spacer");
  expect(spacer.style.getPropertyValue("height")).toBe(`${100_000 * ROW_HEIGHT}px`);
  expect(rows()[0]?.getAttribute("aria-setsize")).toBe("100000");
  // The first page only, in one call of 100.
  expect(messageCalls(backend)).toEqual([[MOCK_ACCOUNT, "INBOX", 0, 100]]);
});

test("scrolling fetches the page in view, and only that", async () => {
  const backend = await openMailbox(100_000);
  const list = screen.getByTestId("message-list");

  list.scrollTop = 50_000 * ROW_HEIGHT;
  await fireEvent.scroll(list);

  await waitFor(() => expect(rows().some((r) => r.dataset.id === "50001")).toBe(true));
  expect(rows().length).toBeLessThan(100);
  const offsets = messageCalls(backend).map((args) => args[2]);
  expect(offsets).toContain(49_900);
  expect(offsets).toContain(50_000);
  expect(offsets.length).toBeLessThanOrEqual(4);
  const row = rows().find((r) => r.dataset.id === "50001");
  expect(row?.style.getPropertyValue("transform")).toBe(`translateY(${50_000 * ROW_HEIGHT}px)`);

  // Back to the top: page 0 is still cached, no new call for it.
  list.scrollTop = 0;
  await fireEvent.scroll(list);
  await waitFor(() => expect(rows()[0]?.dataset.id).toBe("1"));
  expect(messageCalls(backend).filter((args) => args[2] === 0)).toHaveLength(1);
});

test("unread rows are marked, encrypted and signed rows carry named icons", async () => {
  await openMailbox(50);
  const first = rows()[0] as HTMLElement;
  expect(first.classList.contains("unread")).toBe(true);
  expect(within(first).getByText("Unread.")).toBeTruthy();
  expect(within(first).getByRole("img", { name: "Encrypted" })).toBeTruthy();
  expect(within(first).getByRole("img", { name: "Signed" })).toBeTruthy();
  const second = rows()[1] as HTMLElement;
  expect(second.classList.contains("unread")).toBe(false);
  expect(within(second).queryByRole("img", { name: "Encrypted" })).toBeNull();
});

test("arrow keys move the selection and Enter opens the message", async () => {
  const backend = await openMailbox(500);
  const user = userEvent.setup();
  const list = screen.getByTestId("message-list");
  list.focus();

  await user.keyboard("{ArrowDown}{ArrowDown}");
  expect(rows()[1]?.getAttribute("aria-selected")).toBe("true");
  expect(list.getAttribute("aria-activedescendant")).toBe("message-2");
  await user.keyboard("{ArrowUp}");
  expect(list.getAttribute("aria-activedescendant")).toBe("message-1");
  await user.keyboard("{ArrowDown}{Enter}");

  expect((await screen.findByTestId("reader-subject")).textContent).toBe("Keys and signatures #2");
  expect(backend.calls.find((c) => c.name === "openMessage")?.args).toEqual([2]);
});

test("the flag toggle flags a message", async () => {
  const backend = await openMailbox(20);
  const user = userEvent.setup();
  // A pointer shortcut, hidden from assistive technology (F and the reader's Flag
  // button are the keyboard's way), so found by its class rather than its role.
  const flagButton = () => (rows()[0] as HTMLElement).querySelector<HTMLButtonElement>("button.flag");
  const flag = flagButton() as HTMLButtonElement;
  expect(flag.getAttribute("aria-label")).toBe("Flag");
  await user.click(flag);
  await waitFor(() =>
    expect(flagButton()?.getAttribute("aria-pressed")).toBe("true"),
  );
  expect(backend.calls.find((c) => c.name === "setFlag")?.args).toEqual([1, "flagged", true]);
  // Clicking the flag does not open the message.
  expect(backend.names()).not.toContain("openMessage");
});

test("search shows its hits in the same list", async () => {
  const backend = await openMailbox(1000);
  const user = userEvent.setup();
  await user.type(screen.getByLabelText("Search mail"), "Invoice");
  await user.click(screen.getByRole("button", { name: "Search" }));

  await waitFor(() => expect(rows().every((r) => r.textContent?.includes("Invoice"))).toBe(true));
  expect(rows().length).toBeGreaterThan(0);
  expect(backend.calls.find((c) => c.name === "search")?.args).toEqual([MOCK_ACCOUNT, "Invoice", 200]);
});

test("folders: special-use first with their names, unread counts shown", async () => {
  await openMailbox(100);
  const names = [...document.querySelectorAll<HTMLElement>("[data-testid^=folder-]")].map((b) => b.dataset.testid);
  expect(names).toEqual(["folder-INBOX", "folder-Drafts", "folder-Sent", "folder-Trash", "folder-Projects"]);
  expect(screen.getByTestId("folder-INBOX").textContent).toContain("Inbox");
  expect(computeAccessibleName(screen.getByTestId("folder-INBOX"))).toMatch(/^Inbox\s*,\s*21\s*unread$/);
});

test("new mail refreshes the folder counts and the visible rows; progress shows in words", async () => {
  const backend = await openMailbox(100);
  const before = backend.calls.length;
  backend.inboxSize = 101;
  backend.emitChanged({ accountId: MOCK_ACCOUNT, folders: ["INBOX"] });
  await waitFor(() => expect(rows()[0]?.getAttribute("aria-setsize")).toBe("101"));
  const after = backend.names().slice(before);
  expect(after).toContain("folders");
  expect(after).toContain("messages");

  const status = screen.getByTestId("sync-status");
  backend.emitProgress({ accountId: MOCK_ACCOUNT, phase: "syncing", folder: "INBOX", done: 120, total: 400, message: null, retryInSecs: null });
  await waitFor(() => expect(status.textContent).toBe("Syncing INBOX 120/400"));
  backend.emitProgress({ accountId: MOCK_ACCOUNT, phase: "offline", folder: null, done: null, total: null, message: "connection refused", retryInSecs: 30 });
  await waitFor(() => expect(status.textContent).toBe("Offline — retrying in 30 s: connection refused"));
  backend.emitProgress({ accountId: MOCK_ACCOUNT, phase: "idle", folder: null, done: null, total: null, message: null, retryInSecs: null });
  await waitFor(() => expect(status.textContent).toBe("Up to date"));
});
