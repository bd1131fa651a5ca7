// Adding a mail account and the settings screen, against the in-memory backend.
import { expect, test } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { MOCK_PASSWORD, MockBackend } from "./mock";

test("add a mail account: lookup, the server's refusal in words, then the first sync", async () => {
  const backend = new MockBackend({ state: "unlocked", withAccount: false, delayMs: 20 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.type(await screen.findByTestId("mail-address"), "ada@example.org");
  await user.click(screen.getByTestId("mail-discover"));
  expect(await screen.findByText("Looking up settings…")).toBeTruthy();
  const password = await screen.findByTestId<HTMLInputElement>("mail-password");
  expect(screen.getByText(/imap\.example\.org:993/)).toBeTruthy();
  expect(screen.getByLabelText<HTMLInputElement>("IMAP server").value).toBe("imap.example.org");

  await user.type(password, "wrong");
  await user.click(screen.getByTestId("mail-add"));
  await waitFor(() =>
    expect(screen.getByTestId("mail-error").textContent).toBe(
      "Incoming mail (IMAP) at imap.example.org: the server refused the login: wrong user name or password.",
    ),
  );
  expect(password.value).toBe("wrong");

  await user.clear(password);
  await user.type(password, "mail-password");
  await user.click(screen.getByTestId("mail-add"));
  const line = await screen.findByTestId("first-sync");
  expect(backend.names()).toContain("syncNow");
  backend.emitProgress({ accountId: "acct-2", phase: "syncing", folder: "INBOX", done: 40, total: 400, message: null, retryInSecs: null });
  await waitFor(() => expect(line.textContent).toBe("Syncing INBOX 40/400"));
  const bar = screen.getByRole("progressbar", { name: "First sync progress" }) as HTMLProgressElement;
  expect(bar.value).toBeCloseTo(0.1);

  await user.click(screen.getByTestId("mail-done"));
  expect(await screen.findByTestId("folder-INBOX")).toBeTruthy();
});

test("a Gmail address gets Sign in with Google, which adds the account through the browser", async () => {
  const backend = new MockBackend({ state: "unlocked", withAccount: false, delayMs: 20 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.type(await screen.findByTestId("mail-address"), "refuse@gmail.com");
  await user.click(screen.getByTestId("mail-discover"));
  const google = await screen.findByTestId("mail-google");
  expect(google.textContent).toBe("Sign in with Google");
  expect(screen.queryByTestId("mail-microsoft")).toBeNull();
  // The app-password way stays open.
  expect(screen.getByTestId("mail-password")).toBeTruthy();

  await user.click(google);
  expect(await screen.findByText("Waiting for you to sign in at Google in your browser…")).toBeTruthy();
  await waitFor(() => expect(screen.getByTestId("mail-error").textContent).toContain("refused at the provider"));
  expect(backend.accounts).toEqual([]);

  await user.clear(screen.getByTestId("mail-address"));
  await user.type(screen.getByTestId("mail-address"), "ada@gmail.com");
  await user.click(screen.getByTestId("mail-discover"));
  await user.click(await screen.findByTestId("mail-google"));
  await screen.findByTestId("first-sync");
  expect(backend.calls.find((c) => c.name === "addOAuthAccount" && c.args[1] === "ada@gmail.com")?.args).toEqual([
    "google",
    "ada@gmail.com",
  ]);
  expect(backend.accounts[0]?.signedInAt).toBe("Gmail");
  expect(backend.names()).toContain("syncNow");
});

test("settings: key in groups of four, revoke after confirming, publish, lock", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByTestId("settings"));

  expect((await screen.findByTestId("key-fingerprint")).textContent).toBe(
    "0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567",
  );
  expect(await screen.findByText("Sealpost 0.0.0-mock · sync server http://127.0.0.1:8443")).toBeTruthy();

  await user.click(screen.getByRole("button", { name: "Revoke Office desktop" }));
  const dialog = screen.getByRole("dialog", { name: "Revoke this device?" });
  await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
  expect(backend.names()).not.toContain("revokeDevice");
  await user.click(screen.getByRole("button", { name: "Revoke Office desktop" }));
  await user.click(screen.getByRole("button", { name: "Revoke" }));
  await waitFor(() => expect(screen.getByTestId("devices-list").textContent).not.toContain("Office desktop"));
  expect(backend.calls.find((c) => c.name === "revokeDevice")?.args).toEqual(["dev-2"]);

  await user.click(screen.getByRole("button", { name: "Publish key for ada@example.org" }));
  expect(await screen.findByText("Check your mail at ada@example.org to confirm.")).toBeTruthy();

  await user.click(screen.getByTestId("lock-now"));
  expect(await screen.findByRole("heading", { name: "Unlock Sealpost" })).toBeTruthy();
});

test("change password: the strength gate, then the fields are cleared", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByTestId("settings"));
  const change = await screen.findByRole<HTMLButtonElement>("button", { name: "Change password" });
  await user.type(screen.getByLabelText("Current password"), MOCK_PASSWORD);
  await user.type(screen.getByLabelText("New password"), "letmein");
  await user.type(screen.getByLabelText("Repeat the new password"), "letmein");
  await waitFor(() => expect(document.querySelector("#new-strength")?.textContent).toContain("less than a second"));
  expect(change.disabled).toBe(true);

  const next = "amber otter signals twelve ferries";
  await user.clear(screen.getByLabelText("New password"));
  await user.type(screen.getByLabelText("New password"), next);
  await user.clear(screen.getByLabelText("Repeat the new password"));
  await user.type(screen.getByLabelText("Repeat the new password"), next);
  await waitFor(() => expect(change.disabled).toBe(false));
  await user.click(change);
  expect(await screen.findByText(/Password changed/)).toBeTruthy();
  expect(backend.password).toBe(next);
  expect(screen.getByLabelText<HTMLInputElement>("New password").value).toBe("");
  expect(screen.getByLabelText<HTMLInputElement>("Current password").value).toBe("");
});

test("a new recovery code: the password first, shown once, saved as a kit, then forgotten", async () => {
  const backend = new MockBackend({ state: "unlocked", inboxSize: 10 });
  const user = userEvent.setup();
  render(App, { backend });
  await user.click(await screen.findByRole("button", { name: "Settings" }));
  const field = await screen.findByTestId<HTMLInputElement>("recovery-password");
  await user.type(field, "not it");
  await user.click(screen.getByTestId("new-recovery-code-button"));
  await waitFor(() => expect(screen.getByText("That password is not right.")).toBeTruthy());
  expect(screen.queryByTestId("new-recovery-code")).toBeNull();

  await user.clear(field);
  await user.type(field, MOCK_PASSWORD);
  await user.click(screen.getByTestId("new-recovery-code-button"));
  const code = await screen.findByTestId("new-recovery-code");
  expect(code.textContent).toBe("P4TW-8NQX-3KRV-7DMH-2BZL-6GCS");
  expect(screen.getByText(/old recovery code no longer works/)).toBeTruthy();
  await user.click(screen.getByTestId("save-recovery-kit"));
  await waitFor(() => expect(screen.getByText("Recovery kit saved.")).toBeTruthy());
  await user.click(screen.getByTestId("recovery-code-saved"));
  await waitFor(() => expect(screen.queryByTestId("new-recovery-code")).toBeNull());
  expect(backend.recoveryCode).toBeNull();
  // The password typed for it is not kept in the field.
  expect(screen.getByTestId<HTMLInputElement>("recovery-password").value).toBe("");
});
