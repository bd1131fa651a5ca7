/**
 * An in-memory `Backend`: a TEST DOUBLE, not a feature. Vitest runs every screen
 * against it, and `npm run dev` uses it in a plain browser (no Tauri) so the UI can
 * be worked on without the Rust side. Nothing here encrypts, stores or sends
 * anything; its password gate is a toy (accepted at 16+ characters without a
 * common word), not zxcvbn.
 *
 * It is deterministic: the same options give the same folders, messages (message
 * `n` of the inbox is generated from `n` alone, so 100,000 cost nothing until
 * asked for), keys and ids. Tests read `calls` to see what the UI asked, and
 * push events with `emitProgress`, `emitChanged`, `emitOutbox`, `emitMessageChanged` and
 * `emitLocked`.
 */
import type { UnlistenFn } from "@tauri-apps/api/event";
import {
  BackendError,
  type AccountSetup,
  type AppInfo,
  type Backend,
  type ComposeInput,
  type Created,
  type DeviceInfo,
  type DraftSummary,
  type DraftView,
  type FolderInfo,
  type MailAccount,
  type MailChanged,
  type MailProgress,
  type MessagePage,
  type MessageSummary,
  type MessageView,
  type MyKey,
  type NewMailAccount,
  type OAuthProvider,
  type OutboxEntry,
  type OutboxEvent,
  type PasswordCheck,
  type MessageChanged,
  type PickedFile,
  type ProfileState,
  type PublishPending,
  type RecipientKey,
  type Session,
  type Status,
} from "./backend";

/** How a `MockBackend` starts. */
export interface MockOptions {
  /** Where the profile stands at start (default `"unlocked"`). */
  state?: ProfileState;
  /** The profile's password (default {@link MOCK_PASSWORD}). */
  password?: string;
  /** Messages in the inbox of the first account (default 1,000). */
  inboxSize?: number;
  /** Whether a mail account exists at start (default true when not `"none"`). */
  withAccount?: boolean;
  /** Milliseconds every call waits, to show busy states in the browser (default 0). */
  delayMs?: number;
  /** Failed sign-in attempts reported by `signIn` (default 0). */
  failedAttempts?: number;
}

/** The mock profile's password. */
export const MOCK_PASSWORD = "correct horse battery staple";
/** The mock user's name. */
export const MOCK_USER = "ada";
/** The first mail account's id. */
export const MOCK_ACCOUNT = "acct-1";
/** Addresses with a known key; bob@example.org has none. */
export const MOCK_KEYS: Record<string, { confirmed: boolean }> = {
  "alice@example.org": { confirmed: true },
  "carol@example.org": { confirmed: false },
  "ada@example.org": { confirmed: true },
};

const COMMON = ["password", "qwerty", "123456", "letmein", "iloveyou", "sealpost", "admin"];
const SENDERS = [
  "Alice Liddell <alice@example.org>",
  "Bob Builder <bob@example.org>",
  "Carol Danvers <carol@example.org>",
  "Dan Brown <dan@example.net>",
  "Eve Online <eve@example.com>",
];
const TOPICS = ["Quarterly report", "Lunch on Friday?", "Keys and signatures", "Invoice", "Holiday photos", "Meeting notes"];
/** 2026-11-20 12:00 UTC: message dates count back from here. */
const NEWEST = 1_795_176_000;

type Call = { name: string; args: unknown[] };
type Handlers<T> = Set<(value: T) => void>;

/** The in-memory backend. */
export class MockBackend implements Backend {
  /** Every call, in order: the method name and its arguments. */
  readonly calls: Call[] = [];
  state: ProfileState;
  password: string;
  user: string | null;
  recoveryCode: string | null = null;
  accounts: MailAccount[];
  inboxSize: number;
  readonly savedDrafts = new Map<number, ComposeInput>();
  /** The outbox: a send to `doubt@…` ends in doubt and stays here. */
  outboxEntries: (OutboxEntry & { accountId: string })[] = [];
  readonly flags = new Map<number, string[]>();
  readonly allowedSenders = new Set<string>();
  devicesList: DeviceInfo[] = [
    { id: "dev-1", name: "This laptop", current: true, createdAt: NEWEST - 90 * 86_400, lastSeen: NEWEST },
    {
      id: "dev-2",
      name: "Office desktop",
      current: false,
      createdAt: NEWEST - 60 * 86_400,
      lastSeen: NEWEST - 86_400,
    },
  ];
  key: MyKey | null = {
    fingerprint: "0123456789ABCDEF0123456789ABCDEF01234567",
    addresses: ["ada@example.org"],
    created: NEWEST - 30 * 86_400,
    expires: NEWEST + 700 * 86_400,
  };
  readonly #delayMs: number;
  readonly #failedAttempts: number;
  #nextDraft = 1;
  #nextAccount = 2;
  readonly #progress: Handlers<MailProgress> = new Set();
  readonly #changed: Handlers<MailChanged> = new Set();
  readonly #outbox: Handlers<OutboxEvent> = new Set();
  readonly #locked: Handlers<void> = new Set();
  readonly #messageChanged: Handlers<MessageChanged> = new Set();

  constructor(options: MockOptions = {}) {
    this.state = options.state ?? "unlocked";
    this.password = options.password ?? MOCK_PASSWORD;
    this.user = this.state === "none" ? null : MOCK_USER;
    this.inboxSize = options.inboxSize ?? 1000;
    this.#delayMs = options.delayMs ?? 0;
    this.#failedAttempts = options.failedAttempts ?? 0;
    const withAccount = options.withAccount ?? this.state !== "none";
    this.accounts = withAccount ? [account(MOCK_ACCOUNT, "ada@example.org")] : [];
  }

  // ------------------------------------------------------------- test helpers

  /** The names of the calls made so far. */
  names(): string[] {
    return this.calls.map((c) => c.name);
  }

  emitProgress(p: MailProgress): void {
    for (const h of this.#progress) h(p);
  }
  emitChanged(c: MailChanged): void {
    for (const h of this.#changed) h(c);
  }
  emitOutbox(o: OutboxEvent): void {
    for (const h of this.#outbox) h(o);
  }
  emitMessageChanged(c: MessageChanged): void {
    for (const h of this.#messageChanged) h(c);
  }
  emitLocked(): void {
    this.state = "locked";
    for (const h of this.#locked) h();
  }

  // ------------------------------------------------------------------ Backend

  async appInfo(): Promise<AppInfo> {
    await this.#enter("appInfo");
    return { name: "Sealpost", version: "0.0.0-mock", syncServer: "http://127.0.0.1:8443" };
  }

  async status(): Promise<Status> {
    await this.#enter("status");
    return { state: this.state, user: this.user, syncServer: "http://127.0.0.1:8443" };
  }

  async checkPassword(password: string, user: string): Promise<PasswordCheck> {
    await this.#enter("checkPassword", password.length, user);
    return gate(password, user);
  }

  async createAccount(user: string, password: string): Promise<Created> {
    await this.#enter("createAccount", user);
    if (this.state !== "none") throw new BackendError("profile_exists", "a profile exists");
    if (!/^[a-z0-9._-]{2,32}$/i.test(user)) {
      throw new BackendError("bad_user_name", "use 2 to 32 letters, digits, dots, dashes or underscores");
    }
    if (user === "taken") throw new BackendError("account_exists", "taken");
    if (!gate(password, user).accepted) throw new BackendError("weak_password", "weak");
    this.state = "unlocked";
    this.user = user;
    this.password = password;
    this.recoveryCode = "K7QM-2XPV-9RTD-4HWB-CF3N-8JLZ";
    return { user, recoveryCode: this.recoveryCode };
  }

  async saveRecoveryKit(): Promise<boolean> {
    await this.#enter("saveRecoveryKit");
    if (this.recoveryCode === null) throw new BackendError("internal", "no recovery code in memory");
    return true;
  }

  async forgetRecoveryCode(): Promise<void> {
    await this.#enter("forgetRecoveryCode");
    this.recoveryCode = null;
  }

  async signIn(user: string, password: string): Promise<Session> {
    await this.#enter("signIn", user);
    if (this.state !== "none") throw new BackendError("profile_exists", "a profile exists");
    if (password !== this.password) throw new BackendError(
        "login_failed",
        "sign-in failed: wrong user name or password, or the account is locked after too many failed attempts",
      );
    this.state = "unlocked";
    this.user = user;
    this.accounts = [account(MOCK_ACCOUNT, "ada@example.org")];
    return { user, failedAttempts: this.#failedAttempts };
  }

  async unlock(password: string): Promise<Session> {
    await this.#enter("unlock");
    if (password !== this.password) throw new BackendError("wrong_password", "That password is not right");
    this.state = "unlocked";
    return { user: this.user ?? MOCK_USER, failedAttempts: 0 };
  }

  async lock(): Promise<void> {
    await this.#enter("lock");
    this.emitLocked();
  }

  async newRecoveryCode(password: string): Promise<string> {
    await this.#guard("newRecoveryCode");
    if (password !== this.password) throw new BackendError("wrong_password", "That password is not right");
    this.recoveryCode = "P4TW-8NQX-3KRV-7DMH-2BZL-6GCS";
    return this.recoveryCode;
  }

  async changePassword(current: string, next: string): Promise<void> {
    await this.#guard("changePassword");
    if (current !== this.password) throw new BackendError("wrong_password", "That password is not right");
    if (!gate(next, this.user ?? "").accepted) throw new BackendError("weak_password", "weak");
    this.password = next;
  }

  async discoverAccount(address: string): Promise<AccountSetup> {
    await this.#guard("discoverAccount", address);
    const domain = address.split("@")[1];
    if (!domain || !address.includes("@")) throw new BackendError("bad_address", `not an address: ${address}`);
    const oauth = domain === "gmail.com" ? "google" : domain === "outlook.com" ? "microsoft" : null;
    return {
      address,
      login: address,
      imap: { host: `imap.${domain}`, port: 993, security: "tls" },
      smtp: { host: `smtp.${domain}`, port: 465, security: "tls" },
      source: domain === "example.org" ? "autoconfig" : "guess",
      oauth,
    };
  }

  async addMailAccount(input: NewMailAccount): Promise<MailAccount> {
    await this.#guard("addMailAccount", input.address);
    if (input.password !== "mail-password") {
      throw new BackendError(
        "mail_check",
        `Incoming mail (IMAP) at ${input.imap.host}: the server refused the login: wrong user name or password`,
      );
    }
    return this.#addAccount(input.address);
  }

  async addOAuthAccount(provider: OAuthProvider, address: string): Promise<MailAccount> {
    await this.#guard("addOAuthAccount", provider, address);
    if (address.startsWith("refuse@")) {
      throw new BackendError("mail", "the sign-in was refused at the provider");
    }
    const added = this.#addAccount(address);
    added.signedInAt = provider === "google" ? "Gmail" : "Microsoft 365";
    return { ...added };
  }

  async signInMailAccountAgain(accountId: string): Promise<void> {
    await this.#guard("signInMailAccountAgain", accountId);
  }

  async mailAccounts(): Promise<MailAccount[]> {
    await this.#guard("mailAccounts");
    return this.accounts.map((a) => ({ ...a }));
  }

  /** A data: URL standing in for the Rust scheme (tests read the document from it). */
  mailFrameUrl(id: number): string {
    const html = this.#html(id) ?? "";
    return `data:text/html;charset=utf-8,${encodeURIComponent(html)}`;
  }

  async removeMailAccount(accountId: string): Promise<void> {
    await this.#guard("removeMailAccount", accountId);
    this.accounts = this.accounts.filter((a) => a.id !== accountId);
  }

  async syncNow(): Promise<void> {
    await this.#guard("syncNow");
    // In the browser (delayMs > 0) play a short sync of each account; tests emit their own.
    if (this.#delayMs === 0) return;
    for (const acct of this.accounts) {
      const total = acct.id === MOCK_ACCOUNT ? 400 : 40;
      const steps: MailProgress[] = [
        { accountId: acct.id, phase: "connecting", folder: null, done: null, total: null, message: null, retryInSecs: null },
        ...[0, 100, 200, 300, 400].map((done) => ({
          accountId: acct.id,
          phase: "syncing" as const,
          folder: "INBOX",
          done: Math.min(done, total),
          total,
          message: null,
          retryInSecs: null,
        })),
        { accountId: acct.id, phase: "idle", folder: null, done: null, total: null, message: null, retryInSecs: null },
      ];
      steps.forEach((p, i) => setTimeout(() => this.emitProgress(p), (i + 1) * this.#delayMs * 2));
    }
  }

  async folders(accountId: string): Promise<FolderInfo[]> {
    await this.#guard("folders", accountId);
    if (!this.accounts.some((a) => a.id === accountId)) return [];
    const inbox = accountId === MOCK_ACCOUNT ? this.inboxSize : 0;
    let unread = 0;
    if (accountId === MOCK_ACCOUNT) {
      for (let n = 1; n <= Math.min(inbox, 2000); n++) {
        if (!this.#summary(n).flags.includes("\\Seen")) unread++;
      }
    }
    return [
      { name: "Projects", specialUse: null, total: 3, unread: 1 },
      { name: "Trash", specialUse: "Trash", total: 0, unread: 0 },
      { name: "Sent", specialUse: "Sent", total: 12, unread: 0 },
      { name: "INBOX", specialUse: "Inbox", total: inbox, unread },
      { name: "Drafts", specialUse: "Drafts", total: this.savedDrafts.size, unread: 0 },
    ];
  }

  async messages(accountId: string, folder: string, offset: number, limit: number): Promise<MessagePage> {
    await this.#guard("messages", accountId, folder, offset, limit);
    const total = accountId !== MOCK_ACCOUNT ? 0 : folder === "INBOX" ? this.inboxSize : folder === "Sent" ? 12 : folder === "Projects" ? 3 : 0;
    const items: MessageSummary[] = [];
    for (let row = offset; row < Math.min(total, offset + limit); row++) {
      items.push(folder === "INBOX" ? this.#summary(row + 1) : { ...this.#summary(row + 1), id: 900_000 + row, folder });
    }
    return { total, offset, items };
  }

  async search(accountId: string, query: string, limit: number): Promise<MessagePage> {
    await this.#guard("search", accountId, query, limit);
    const needle = query.toLowerCase();
    const items: MessageSummary[] = [];
    for (let n = 1; n <= Math.min(this.inboxSize, 5000) && items.length < limit; n++) {
      const s = this.#summary(n);
      if (s.subject.toLowerCase().includes(needle) || s.from.toLowerCase().includes(needle)) items.push(s);
    }
    return { total: items.length, offset: 0, items };
  }

  async openMessage(id: number): Promise<MessageView> {
    await this.#guard("openMessage", id);
    const summary = this.#summary(id);
    this.flags.set(id, [...new Set([...summary.flags, "\\Seen"])]);
    return this.#view(id);
  }

  async allowRemoteContent(id: number): Promise<MessageView> {
    await this.#guard("allowRemoteContent", id);
    this.allowedSenders.add(this.#summary(id).from);
    return this.#view(id);
  }

  async setFlag(id: number, flag: "seen" | "flagged", on: boolean): Promise<void> {
    await this.#guard("setFlag", id, flag, on);
    const name = flag === "seen" ? "\\Seen" : "\\Flagged";
    const flags = this.#summary(id).flags.filter((f) => f !== name);
    this.flags.set(id, on ? [...flags, name] : flags);
  }

  async saveAttachment(id: number, index: number): Promise<boolean> {
    await this.#guard("saveAttachment", id, index);
    return true;
  }

  async openLink(url: string): Promise<void> {
    await this.#guard("openLink", url);
  }

  async recipientKeys(addresses: string[]): Promise<RecipientKey[]> {
    await this.#guard("recipientKeys", addresses);
    return addresses.map((address) => {
      const bare = (/<([^>]+)>/.exec(address)?.[1] ?? address).toLowerCase();
      const known = MOCK_KEYS[bare];
      return { address, hasKey: known !== undefined, confirmed: known?.confirmed ?? false };
    });
  }

  async pickAttachments(): Promise<PickedFile[]> {
    await this.#guard("pickAttachments");
    return [{ token: `file-${this.calls.length}`, name: "report.pdf", size: 48_213 }];
  }

  async saveDraft(compose: ComposeInput): Promise<number | null> {
    await this.#guard("saveDraft", compose);
    const empty =
      [...compose.to, ...compose.cc, ...compose.bcc].every((a) => a.trim() === "") &&
      compose.subject.trim() === "" &&
      compose.body.trim() === "" &&
      compose.attachments.length === 0;
    if (empty) {
      if (compose.draftId !== null) this.savedDrafts.delete(compose.draftId);
      return null;
    }
    const id = compose.draftId ?? this.#nextDraft++;
    this.savedDrafts.set(id, compose);
    return id;
  }

  async drafts(accountId: string): Promise<DraftSummary[]> {
    await this.#guard("drafts", accountId);
    return [...this.savedDrafts.entries()]
      .filter(([, d]) => d.accountId === accountId)
      .sort(([a], [b]) => b - a)
      .map(([id, d]) => ({
        id,
        to: d.to,
        subject: d.subject,
        snippet: d.body.slice(0, 120),
        updatedAt: NEWEST + id,
      }));
  }

  async openDraft(accountId: string, id: number): Promise<DraftView> {
    await this.#guard("openDraft", accountId, id);
    const d = this.savedDrafts.get(id);
    if (!d || d.accountId !== accountId) throw new BackendError("not_in_mail_store", `no draft ${id}`);
    return {
      id,
      accountId,
      to: d.to,
      cc: d.cc,
      bcc: d.bcc,
      subject: d.subject,
      text: d.body,
      encrypt: d.encrypt,
      sign: d.sign,
      inReplyTo: d.inReplyTo,
      attachments: d.attachments.map((token) => ({ token, name: "report.pdf", size: 48_213 })),
    };
  }

  async deleteDraft(id: number): Promise<boolean> {
    await this.#guard("deleteDraft", id);
    return this.savedDrafts.delete(id);
  }

  async outbox(accountId: string): Promise<OutboxEntry[]> {
    await this.#guard("outbox", accountId);
    return this.outboxEntries.filter((e) => e.accountId === accountId).map(({ accountId: _, ...e }) => e);
  }

  async resendOutboxEntry(accountId: string, id: number): Promise<void> {
    await this.#guard("resendOutboxEntry", accountId, id);
    const entry = this.outboxEntries.find((e) => e.id === id && e.accountId === accountId);
    if (!entry || entry.state !== "inDoubt") throw new BackendError("mail", `${id} is not in doubt`);
    this.outboxEntries = this.outboxEntries.filter((e) => e !== entry);
    this.#steps(accountId, entry.messageId, ["sending", "sent"]);
  }

  async discardOutboxEntry(accountId: string, id: number): Promise<void> {
    await this.#guard("discardOutboxEntry", accountId, id);
    const before = this.outboxEntries.length;
    this.outboxEntries = this.outboxEntries.filter((e) => !(e.id === id && e.accountId === accountId));
    if (this.outboxEntries.length === before) throw new BackendError("mail", `no outbox entry ${id}`);
  }

  async send(compose: ComposeInput): Promise<void> {
    await this.#guard("send", compose);
    if (compose.draftId !== null) this.savedDrafts.delete(compose.draftId);
    if (compose.to.length + compose.cc.length + compose.bcc.length === 0) {
      throw new BackendError("bad_address", "no recipient");
    }
    const messageId = `<mock-${this.calls.length}@example.org>`;
    const everyone = [...compose.to, ...compose.cc, ...compose.bcc];
    if (everyone.some((a) => a.startsWith("doubt@"))) {
      this.outboxEntries.push({
        accountId: compose.accountId,
        id: this.calls.length,
        messageId,
        recipients: everyone,
        subject: compose.subject,
        state: "inDoubt",
        attempts: 1,
        lastError: "the connection ended before the server answered",
      });
      this.#steps(compose.accountId, messageId, ["queued", "connecting", "sending", "inDoubt"]);
      return;
    }
    const fail = everyone.some((a) => a.startsWith("fail@"));
    this.#steps(
      compose.accountId,
      messageId,
      fail ? ["queued", "sending", "failed"] : ["queued", "connecting", "sending", "savingToSent", "sent"],
    );
  }

  /** Emits an outbox entry's steps, one per tick. */
  #steps(accountId: string, messageId: string, steps: OutboxEvent["step"][]) {
    steps.forEach((step, i) => {
      setTimeout(() => {
        this.emitOutbox({
          accountId,
          messageId,
          step,
          message:
            step === "failed"
              ? "SMTP smtp.example.org: 451 try again later"
              : step === "inDoubt"
                ? "the connection ended before the server answered"
                : null,
        });
      }, (i + 1) * Math.max(this.#delayMs, 1));
    });
  }

  async devices(): Promise<DeviceInfo[]> {
    await this.#guard("devices");
    return this.devicesList.slice();
  }

  async revokeDevice(id: string): Promise<void> {
    await this.#guard("revokeDevice", id);
    this.devicesList = this.devicesList.filter((d) => d.id !== id);
  }

  async myKey(): Promise<MyKey | null> {
    await this.#guard("myKey");
    return this.key;
  }

  async exportPublicKey(): Promise<string> {
    await this.#guard("exportPublicKey");
    if (!this.key) throw new BackendError("no_own_key", "no key");
    return "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZmockmockmockmock\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";
  }

  async importKey(passphrase: string): Promise<MyKey | null> {
    await this.#guard("importKey", passphrase.length);
    if (passphrase === "") return null;
    return this.key;
  }

  async publishKey(address: string): Promise<PublishPending> {
    await this.#guard("publishKey", address);
    return { address, expiresAt: NEWEST + 86_400 };
  }

  onMailProgress(handler: (p: MailProgress) => void): Promise<UnlistenFn> {
    return subscribe(this.#progress, handler);
  }
  onMailChanged(handler: (c: MailChanged) => void): Promise<UnlistenFn> {
    return subscribe(this.#changed, handler);
  }
  onOutbox(handler: (o: OutboxEvent) => void): Promise<UnlistenFn> {
    return subscribe(this.#outbox, handler);
  }
  onLocked(handler: () => void): Promise<UnlistenFn> {
    return subscribe(this.#locked, handler);
  }
  onMessageChanged(handler: (c: MessageChanged) => void): Promise<UnlistenFn> {
    return subscribe(this.#messageChanged, handler);
  }

  // ------------------------------------------------------------------ inside

  /** Records the call and waits the configured delay. */
  async #enter(name: string, ...args: unknown[]): Promise<void> {
    this.calls.push({ name, args });
    if (this.#delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
  }

  /** Like `#enter`, for calls that need an unlocked session. */
  async #guard(name: string, ...args: unknown[]): Promise<void> {
    await this.#enter(name, ...args);
    if (this.state !== "unlocked") throw new BackendError("locked", "the profile is locked; unlock it first");
  }

  #addAccount(address: string): MailAccount {
    if (this.accounts.some((a) => a.address === address)) {
      throw new BackendError("mail_check", `${address} is already added`);
    }
    const added = account(`acct-${this.#nextAccount++}`, address);
    this.accounts.push(added);
    return added;
  }

  /** Inbox message `n` (1 = newest), from `n` alone plus any flag changes. */
  #summary(n: number): MessageSummary {
    const base = ((n - 1) % 1_000_000) + 1;
    const flags = this.flags.get(n) ?? [
      ...(base % 5 === 0 || base === 1 ? [] : ["\\Seen"]),
      ...(base % 17 === 0 ? ["\\Flagged"] : []),
    ];
    return {
      id: n,
      folder: "INBOX",
      uid: n,
      flags,
      date: NEWEST - (n - 1) * 600,
      from: SENDERS[n % SENDERS.length] ?? "",
      subject: `${TOPICS[n % TOPICS.length] ?? ""} #${n}`,
      encrypted: n % 3 === 1,
      signed: n % 2 === 1,
      state: "ready",
      size: 2_000 + (n % 50) * 100,
    };
  }

  /** The cleaned HTML the frame would show of message `id`, or null without HTML. */
  #html(id: number): string | null {
    if (id % 2 !== 1) return null;
    const summary = this.#summary(id);
    const allowed = this.allowedSenders.has(summary.from);
    return (
      `<h1>${summary.subject}</h1><p>Hello Ada,</p><p>See <a href="https://example.org/report">the report</a>.</p>` +
      (id % 4 === 1 && allowed ? `<img src="https://tracker.example.com/p.gif" alt="">` : "")
    );
  }

  #view(id: number): MessageView {
    const summary = this.#summary(id);
    const encrypted = summary.encrypted;
    const remote = id % 4 === 1;
    const allowed = this.allowedSenders.has(summary.from);
    const html = this.#html(id);
    return {
      summary,
      from: summary.from,
      to: ["Ada <ada@example.org>"],
      cc: id % 3 === 0 ? ["carol@example.org"] : [],
      date: summary.date,
      subject: summary.subject,
      text: `Hello Ada,\n\nSee the report: https://example.org/report\n\n-- \n${summary.from}`,
      subjectProtected: encrypted,
      hasHtml: html !== null,
      remoteContentBlocked: html !== null && remote && !allowed,
      remoteContentAllowed: allowed,
      encryption: encrypted ? "decrypted" : "none",
      encryptionText: encrypted
        ? "Encrypted — only you and the recipients can read it"
        : "Not encrypted — sent in the clear",
      signature: summary.signed
        ? {
            state: "confirmed",
            text: "Signed by alice@example.org — key confirmed",
            signer: "0123456789ABCDEF0123456789ABCDEF01234567",
          }
        : { state: "none", text: "Not signed", signer: null },
      attachments: id % 3 === 1 ? [{ index: 0, name: "report.pdf", mimeType: "application/pdf", size: 48_213 }] : [],
      links: ["https://example.org/report", "mailto:alice@example.org"],
      messageId: `<msg-${id}@example.org>`,
    };
  }
}

/** The toy gate: accepted at 16+ characters with no common word or the user name in it. */
export function gate(password: string, user: string): PasswordCheck {
  const lower = password.toLowerCase();
  const common = COMMON.find((w) => lower.includes(w)) ?? (user.length >= 3 && lower.includes(user.toLowerCase()) ? user : null);
  const length = password.length;
  const accepted = length >= 16 && common === null;
  const score = accepted ? (length >= 20 ? 4 : 3) : common !== null ? 0 : length >= 12 ? 2 : length >= 8 ? 1 : 0;
  const crackTime = accepted ? "centuries" : ["less than a second", "3 hours", "2 days", "2 days"][score] ?? "2 days";
  return {
    accepted,
    score,
    guessesLog10: accepted ? 20 : score * 3,
    crackSeconds: accepted ? 1e12 : 10 ** score,
    crackTime,
    warning: accepted
      ? null
      : common !== null
        ? "This is similar to a commonly used password."
        : "Short passwords are easy to guess.",
    suggestions: accepted ? [] : ["Add another word or two. Uncommon words are better."],
  };
}

function account(id: string, address: string): MailAccount {
  const domain = address.split("@")[1] ?? "example.org";
  return {
    id,
    address,
    login: address,
    imap: { host: `imap.${domain}`, port: 993, security: "tls" },
    smtp: { host: `smtp.${domain}`, port: 465, security: "tls" },
    signedInAt: null,
  };
}

function subscribe<T>(set: Handlers<T>, handler: (value: T) => void): Promise<UnlistenFn> {
  set.add(handler);
  return Promise.resolve(() => {
    set.delete(handler);
  });
}
