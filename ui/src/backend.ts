/**
 * The one typed door from the UI to the Rust shell (src-tauri/).
 *
 * Every screen talks to a {@link Backend}; only {@link tauriBackend} calls
 * `invoke` and `listen`. Tests pass their own `Backend` (see `mock.ts`).
 *
 * The types mirror the camelCase DTOs of src-tauri/commands (Rust is the source
 * of truth; a Rust test checks every command named here is registered). Nothing
 * secret comes back through this door, with one deliberate exception: the
 * recovery code, which the user must see once, right after the account is made.
 */
import { convertFileSrc, invoke, type InvokeArgs } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

/** What `app_info` returns. */
export interface AppInfo {
  name: string;
  version: string;
  /** The sync server's URL (the embedded one on loopback by default). */
  syncServer: string;
}

/** Where the profile on this device stands. */
export type ProfileState = "none" | "locked" | "unlocked";

/** What `status` returns: which screen to show at start. */
export interface Status {
  state: ProfileState;
  /** The account's user name, when there is a profile. */
  user: string | null;
  /** The sync server's URL. */
  syncServer: string;
}

/** The password gate's verdict (zxcvbn), for the live strength meter. */
export interface PasswordCheck {
  /** Whether the password may be used; Create stays off until it is. */
  accepted: boolean;
  /** zxcvbn's score, 0 (weakest) to 4. */
  score: number;
  /** Time to crack at our key-derivation settings, in words ("3 days", "12 thousand years"). */
  crackTime: string;
  /** What is wrong, when zxcvbn recognised a pattern. */
  warning: string | null;
  /** How to do better; empty when accepted. */
  suggestions: string[];
}

/** After `create_account`: the recovery code, shown once. */
export interface Created {
  user: string;
  /** Groups of characters separated by dashes; shown once, never again. */
  recoveryCode: string;
}

/** After `sign_in` or `unlock`. */
export interface Session {
  user: string;
  /** Failed sign-in attempts on the account since the previous successful one (0 after unlock). */
  failedAttempts: number;
}

/** One server of a mail account. */
export interface ServerSettings {
  host: string;
  port: number;
  /** Implicit TLS (993/465), or STARTTLS — then required, never a plain fallback. */
  security: "tls" | "starttls";
}

/** The providers that sign in through OAuth2 instead of a password. */
export type OAuthProvider = "google" | "microsoft";

/** What `discover_account` found for an address (autoconfig, then guesses). */
export interface AccountSetup {
  address: string;
  login: string;
  imap: ServerSettings;
  smtp: ServerSettings;
  /** Where the settings came from. */
  source: "autoconfig" | "guess" | "manual";
  /** When the provider wants OAuth2 ("Sign in with Google/Microsoft"); null for a password. */
  oauth: OAuthProvider | null;
}

/** A mail account as stored (no password). */
export interface MailAccount {
  id: string;
  address: string;
  login: string;
  imap: ServerSettings;
  smtp: ServerSettings;
  /** Where it signs in with OAuth2 (`Gmail`, `Microsoft 365`); null for a password. */
  signedInAt: string | null;
}

/** What `add_mail_account` takes. The password goes to the vault only. */
export interface NewMailAccount {
  address: string;
  login: string;
  imap: ServerSettings;
  smtp: ServerSettings;
  password: string;
}

/** A folder in the local store. */
export interface FolderInfo {
  name: string;
  /** `Inbox`, `Sent`, `Drafts`, `Trash`, `Junk`, `Archive`, … or null. */
  specialUse: string | null;
  total: number;
  unread: number;
}

/** One row of the message list. */
export interface MessageSummary {
  id: number;
  folder: string;
  uid: number;
  /** IMAP flags as written (`\\Seen`, `\\Flagged`, `$Forwarded`). */
  flags: string[];
  /** Unix seconds; 0 when unknown. */
  date: number;
  from: string;
  subject: string;
  encrypted: boolean;
  signed: boolean;
  state: "pending" | "ready" | "unreadable";
  size: number;
}

/** A window onto a folder or a search, for the virtualized list. */
export interface MessagePage {
  /** All rows in the folder (or search hits), not only this page. */
  total: number;
  offset: number;
  items: MessageSummary[];
}

/** An attachment of an opened message. */
export interface AttachmentInfo {
  index: number;
  name: string;
  mimeType: string;
  size: number;
}

/** The signature of an opened message, in words for the app's own chrome. */
export interface SignatureView {
  state: "none" | "confirmed" | "unconfirmed" | "bad" | "unknownKey";
  /** e.g. "Signed by alice@example.org — key confirmed". */
  text: string;
}

/** An opened message. */
export interface MessageView {
  summary: MessageSummary;
  from: string;
  to: string[];
  cc: string[];
  date: number;
  subject: string;
  /** The plain text (always present; derived from HTML when there is no text part). */
  text: string;
  /**
   * The HTML body, already sanitized in Rust (ammonia), remote content removed unless
   * the sender is allowed; null when the mail has none. Shown only in an iframe
   * sandboxed without scripts or same-origin.
   */
  html: string | null;
  /** The HTML referred to remote content that was removed. */
  remoteContentBlocked: boolean;
  /** Remote content from this sender is allowed (the frame then loads it). */
  remoteContentAllowed: boolean;
  /** "none": sent in the clear; "decrypted"; "failed": encrypted, could not be opened. */
  encryption: "none" | "decrypted" | "failed";
  /** The encryption in words ("Encrypted — only you and the recipients can read it"). */
  encryptionText: string;
  signature: SignatureView;
  attachments: AttachmentInfo[];
  /**
   * The http(s) and mailto links found in the HTML or text, in order, without
   * duplicates. Links inside the sandboxed frame are not clickable, so the app's
   * chrome lists these; opening one asks the user, then calls `openLink`.
   */
  links: string[];
  /** The Message-ID, for replies. */
  messageId: string | null;
}

/** Whether a recipient's key is known, for the per-recipient marks in compose. */
export interface RecipientKey {
  address: string;
  hasKey: boolean;
  /** The key was confirmed (by the directory or by the user). */
  confirmed: boolean;
}

/** A file the user picked for a compose (the path stays in Rust). */
export interface PickedFile {
  /** Opaque token naming the file in the Rust session. */
  token: string;
  name: string;
  size: number;
}

/** What compose sends or saves as a draft. */
export interface ComposeInput {
  accountId: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  body: string;
  encrypt: boolean;
  sign: boolean;
  /** Tokens from `pick_attachments`. */
  attachments: string[];
  /** The draft this compose updates, if saved before. */
  draftId: number | null;
  /** The Message-ID this answers. */
  inReplyTo: string | null;
}

/** A saved draft in a list. */
export interface DraftSummary {
  id: number;
  to: string[];
  subject: string;
  /** The start of its text. */
  snippet: string;
  /** Unix seconds. */
  updatedAt: number;
}

/** A draft reopened for editing (Rust: `DraftView`). */
export interface DraftView {
  id: number;
  accountId: string;
  compose: {
    to: string[];
    cc: string[];
    bcc: string[];
    subject: string;
    text: string;
    encrypt: boolean;
    sign: boolean;
    inReplyTo: string | null;
  };
  /** Its attachments, as tokens that later saves and the send take like picked files. */
  attachments: PickedFile[];
}

/** A device signed in to the account. */
export interface DeviceInfo {
  id: string;
  name: string;
  current: boolean;
  /** Unix seconds. */
  lastSeen: number;
}

/** The own OpenPGP key. */
export interface MyKey {
  fingerprint: string;
  addresses: string[];
  /** Unix seconds. */
  created: number;
  /** Unix seconds; null when it does not expire. */
  expires: number | null;
}

/** Background progress of one mail account (event `mail-progress`). */
export interface MailProgress {
  accountId: string;
  phase: "connecting" | "syncing" | "idle" | "offline";
  folder: string | null;
  done: number | null;
  total: number | null;
  /** Why offline, in words. */
  message: string | null;
  /** When the next attempt is, while offline. */
  retryInSecs: number | null;
}

/** New or changed mail in the store (event `mail-changed`). */
export interface MailChanged {
  accountId: string;
  /** The folders whose messages changed; empty when any may have (refresh all). */
  folders: string[];
}

/** An outbox entry moving along (event `outbox`). */
export interface OutboxEvent {
  accountId: string;
  messageId: string;
  step: "queued" | "connecting" | "sending" | "savingToSent" | "sent" | "failed" | "inDoubt";
  /** The failure, in words. */
  message: string | null;
}

/** A message in the outbox (Rust: `OutboxEntry`). */
export interface OutboxEntry {
  id: number;
  messageId: string;
  recipients: string[];
  subject: string;
  /**
   * `queued`, `sending`, `sent` (its copy in Sent not made yet), or `inDoubt`: it may
   * have been sent (the app stopped while the server took it, and it is not in Sent);
   * it is not sent again until the user says so.
   */
  state: "queued" | "sending" | "sent" | "inDoubt";
  attempts: number;
  lastError: string;
}

/** Everything the UI can ask the Rust shell. */
export interface Backend {
  appInfo(): Promise<AppInfo>;
  status(): Promise<Status>;
  /** The gate's verdict on a password (user name and server count as guessable words). */
  checkPassword(password: string, user: string): Promise<PasswordCheck>;
  createAccount(user: string, password: string): Promise<Created>;
  /** Saves a recovery kit (the code and instructions) through a save dialog; false if cancelled. */
  saveRecoveryKit(): Promise<boolean>;
  /** The user confirmed the code is saved: it is dropped from memory. */
  forgetRecoveryCode(): Promise<void>;
  signIn(user: string, password: string): Promise<Session>;
  unlock(password: string): Promise<Session>;
  lock(): Promise<void>;
  changePassword(current: string, next: string): Promise<void>;
  /** A new recovery code (the old one stops working), shown once; kept for `saveRecoveryKit`. */
  newRecoveryCode(password: string): Promise<string>;

  discoverAccount(address: string): Promise<AccountSetup>;
  addMailAccount(account: NewMailAccount): Promise<MailAccount>;
  /**
   * Adds the account through OAuth2 in the system browser ("Sign in with Google /
   * Microsoft"): authorization code with PKCE and a loopback redirect; resolves once
   * the user signed in there and IMAP and SMTP took the token.
   */
  addOAuthAccount(provider: OAuthProvider, address: string): Promise<MailAccount>;
  /** A new OAuth2 sign-in for an account whose sign-in the provider ended. */
  signInMailAccountAgain(accountId: string): Promise<void>;
  mailAccounts(): Promise<MailAccount[]>;
  removeMailAccount(accountId: string): Promise<void>;
  /** Starts (or restarts) the background sync of every account; progress comes as events. */
  syncNow(): Promise<void>;

  folders(accountId: string): Promise<FolderInfo[]>;
  messages(accountId: string, folder: string, offset: number, limit: number): Promise<MessagePage>;
  search(accountId: string, query: string, limit: number): Promise<MessagePage>;
  /** Decrypts and verifies; marks the message seen. */
  openMessage(id: number): Promise<MessageView>;
  /**
   * Where the mail frame loads message `id`'s cleaned HTML from: the app's own
   * `sealpost-mail:` scheme, served by Rust with a policy of its own (inline styles
   * yes, scripts never). Only the URL crosses here, never the mail's markup.
   */
  mailFrameUrl(id: number): string;
  /** Allows remote content from the message's sender from now on. */
  allowRemoteContent(id: number): Promise<MessageView>;
  setFlag(id: number, flag: "seen" | "flagged", on: boolean): Promise<void>;
  /** Saves an attachment through a save dialog; false if cancelled. */
  saveAttachment(id: number, index: number): Promise<boolean>;
  /** Opens a link in the system browser (the UI asks the user first). */
  openLink(url: string): Promise<void>;

  recipientKeys(addresses: string[]): Promise<RecipientKey[]>;
  pickAttachments(): Promise<PickedFile[]>;
  saveDraft(compose: ComposeInput): Promise<number>;
  /** The account's saved drafts, newest first. */
  drafts(accountId: string): Promise<DraftSummary[]>;
  openDraft(accountId: string, id: number): Promise<DraftView>;
  deleteDraft(id: number): Promise<boolean>;
  outbox(accountId: string): Promise<OutboxEntry[]>;
  /** Sends an entry in doubt again (the user's answer). */
  resendOutboxEntry(accountId: string, id: number): Promise<void>;
  /** Drops an entry without sending it (the user's answer). */
  discardOutboxEntry(accountId: string, id: number): Promise<void>;
  /** Queues in the outbox and starts sending; the steps come as `outbox` events. */
  send(compose: ComposeInput): Promise<void>;

  devices(): Promise<DeviceInfo[]>;
  revokeDevice(id: string): Promise<void>;
  myKey(): Promise<MyKey | null>;
  exportPublicKey(): Promise<string>;
  /** Imports an own key from a file picked in a dialog (asks its passphrase); null if cancelled. */
  importKey(passphrase: string): Promise<MyKey | null>;
  publishKey(address: string): Promise<void>;

  onMailProgress(handler: (p: MailProgress) => void): Promise<UnlistenFn>;
  onMailChanged(handler: (c: MailChanged) => void): Promise<UnlistenFn>;
  onOutbox(handler: (o: OutboxEvent) => void): Promise<UnlistenFn>;
  /** The session was locked (by the user, another window, or a password change elsewhere). */
  onLocked(handler: () => void): Promise<UnlistenFn>;
}

/** A failed command, carrying the shell's stable `{ code, message }` (Rust: `AppError`). */
export class BackendError extends Error {
  /**
   * Stable, machine-readable code: the core's snake_case codes (`weak_password`,
   * `wrong_password`, `login_failed`, `rate_limited`, `account_exists`,
   * `sync_unreachable`, `sync_refused`, `bad_user_name`, `profile_exists`,
   * `no_own_key`, `no_recipient_key`, `mail`, `mail_check`, `bad_address`,
   * `locked` when the session is locked, `internal`), or `ipc` when Tauri itself
   * refused. `errorText` in lib/errors.ts puts each into words.
   */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "BackendError";
    this.code = code;
  }
}

/** The real backend: Tauri IPC to the commands registered in src-tauri/lib.rs. */
export const tauriBackend: Backend = {
  appInfo: () => call("app_info"),
  status: () => call("status"),
  checkPassword: (password, user) => call("check_password", { password, user }),
  createAccount: (user, password) => call("create_account", { user, password }),
  saveRecoveryKit: () => call("save_recovery_kit"),
  forgetRecoveryCode: () => call("forget_recovery_code"),
  signIn: (user, password) => call("sign_in", { user, password }),
  unlock: (password) => call("unlock", { password }),
  lock: () => call("lock"),
  changePassword: (current, next) => call("change_password", { current, next }),
  newRecoveryCode: (password) => call("new_recovery_code", { password }),

  discoverAccount: (address) => call("discover_account", { address }),
  addMailAccount: (account) => call("add_mail_account", { account }),
  addOAuthAccount: (provider, address) => call("add_oauth_account", { provider, address }),
  signInMailAccountAgain: (accountId) => call("sign_in_mail_account_again", { accountId }),
  mailAccounts: () => call("mail_accounts"),
  removeMailAccount: (accountId) => call("remove_mail_account", { accountId }),
  syncNow: () => call("sync_now"),

  folders: (accountId) => call("folders", { accountId }),
  messages: (accountId, folder, offset, limit) =>
    call("messages", { accountId, folder, offset, limit }),
  search: (accountId, query, limit) => call("search", { accountId, query, limit }),
  openMessage: (id) => call("open_message", { id }),
  mailFrameUrl: (id) => convertFileSrc(String(id), "sealpost-mail"),
  allowRemoteContent: (id) => call("allow_remote_content", { id }),
  setFlag: (id, flag, on) => call("set_flag", { id, flag, on }),
  saveAttachment: (id, index) => call("save_attachment", { id, index }),
  openLink: (url) => call("open_link", { url }),

  recipientKeys: (addresses) => call("recipient_keys", { addresses }),
  pickAttachments: () => call("pick_attachments"),
  saveDraft: (compose) => call("save_draft", { compose }),
  drafts: (accountId) => call("drafts", { accountId }),
  openDraft: (accountId, id) => call("open_draft", { accountId, id }),
  deleteDraft: (id) => call("delete_draft", { id }),
  outbox: (accountId) => call("outbox", { accountId }),
  resendOutboxEntry: (accountId, id) => call("resend_outbox_entry", { accountId, id }),
  discardOutboxEntry: (accountId, id) => call("discard_outbox_entry", { accountId, id }),
  send: (compose) => call("send", { compose }),

  devices: () => call("devices"),
  revokeDevice: (id) => call("revoke_device", { id }),
  myKey: () => call("my_key"),
  exportPublicKey: () => call("export_public_key"),
  importKey: (passphrase) => call("import_key", { passphrase }),
  publishKey: (address) => call("publish_key", { address }),

  onMailProgress: (handler) => listen<MailProgress>("mail-progress", (e) => handler(e.payload)),
  onMailChanged: (handler) => listen<MailChanged>("mail-changed", (e) => handler(e.payload)),
  onOutbox: (handler) => listen<OutboxEvent>("outbox", (e) => handler(e.payload)),
  onLocked: (handler) => listen("locked", () => handler()),
};

async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    throw toBackendError(raw);
  }
}

/** The shell rejects with `{ code, message }`; Tauri itself (e.g. the ACL) rejects with a string. */
function toBackendError(raw: unknown): BackendError {
  if (typeof raw === "object" && raw !== null && "code" in raw && "message" in raw) {
    return new BackendError(String(raw.code), String(raw.message));
  }
  return new BackendError("ipc", String(raw));
}
