/**
 * The one typed door from the UI to the Rust shell (src-tauri/).
 *
 * Every screen talks to a {@link Backend}; only {@link tauriBackend} calls the
 * commands and listens to events. Tests pass their own `Backend` (see `mock.ts`).
 *
 * The commands and every type they take and give are generated from Rust into
 * `bindings.ts` (`scripts/gen-bindings.sh`; CI fails when it is stale): nothing
 * here is written twice. Nothing secret comes back through this door, with one
 * deliberate exception: the recovery code, which the user must see once.
 */
import { convertFileSrc } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

import { commands, EVENTS } from "./bindings";
import type {
  AccountSetup,
  AppError,
  AppInfo,
  ComposeRequest,
  Created,
  DeviceView,
  DraftSummary,
  DraftView,
  FolderInfo,
  MailAccountView,
  MailChanged,
  MailProgress,
  MessageChanged,
  MessagePage,
  MessageSummary,
  MessageView,
  MyKey,
  NewMailAccount,
  OAuthProvider,
  OutboxEntry,
  OutboxEvent,
  PasswordCheck,
  PickedFile,
  ProfileState,
  PublishPending,
  RecipientKey,
  ServerSettings,
  SessionInfo,
  Status,
} from "./bindings";

// The types come from Rust (generated into bindings.ts); the screens use these names.
export type {
  AccountSetup,
  AppInfo,
  Created,
  DraftSummary,
  DraftView,
  FolderInfo,
  MailChanged,
  MailProgress,
  MessageChanged,
  MessagePage,
  MessageSummary,
  MessageView,
  MyKey,
  NewMailAccount,
  OAuthProvider,
  OutboxEntry,
  OutboxEvent,
  PasswordCheck,
  PickedFile,
  ProfileState,
  PublishPending,
  RecipientKey,
  ServerSettings,
  Status,
};
/** After `sign_in` or `unlock`. */
export type Session = SessionInfo;
/** A mail account as stored (no password). */
export type MailAccount = MailAccountView;
/** A device signed in to the account. */
export type DeviceInfo = DeviceView;
/** What compose sends or saves as a draft. */
export type ComposeInput = ComposeRequest;
/** An attachment of an opened message. */
export type AttachmentInfo = MessageView["attachments"][number];
/** The signature of an opened message, in words. */
export type SignatureView = MessageView["signature"];

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
  /** Saves a draft: its id, or null when the compose holds nothing (no draft is kept). */
  saveDraft(compose: ComposeInput): Promise<number | null>;
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
  /** Asks the key directory to publish the key; the proof mail is confirmed by the app itself. */
  publishKey(address: string): Promise<PublishPending>;

  onMailProgress(handler: (p: MailProgress) => void): Promise<UnlistenFn>;
  onMailChanged(handler: (c: MailChanged) => void): Promise<UnlistenFn>;
  onOutbox(handler: (o: OutboxEvent) => void): Promise<UnlistenFn>;
  /** The session was locked (by the user, another window, or a password change elsewhere). */
  onLocked(handler: () => void): Promise<UnlistenFn>;
  /** An opened message reads differently now (its sender's key arrived): open it again. */
  onMessageChanged(handler: (c: MessageChanged) => void): Promise<UnlistenFn>;
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

/** The event names, in the order of src-tauri/event_names.rs. */
const [MAIL_PROGRESS, MAIL_CHANGED, OUTBOX, LOCKED, MESSAGE_CHANGED] = EVENTS;

/** The real backend: the generated commands (bindings.ts), their errors thrown. */
export const tauriBackend: Backend = {
  appInfo: () => unwrap(commands.appInfo()),
  status: () => unwrap(commands.status()),
  checkPassword: (password, user) => unwrap(commands.checkPassword(password, user)),
  createAccount: (user, password) => unwrap(commands.createAccount(user, password)),
  saveRecoveryKit: () => unwrap(commands.saveRecoveryKit()),
  forgetRecoveryCode: () => done(commands.forgetRecoveryCode()),
  signIn: (user, password) => unwrap(commands.signIn(user, password)),
  unlock: (password) => unwrap(commands.unlock(password)),
  lock: () => done(commands.lock()),
  changePassword: (current, next) => done(commands.changePassword(current, next)),
  newRecoveryCode: (password) => unwrap(commands.newRecoveryCode(password)),

  discoverAccount: (address) => unwrap(commands.discoverAccount(address)),
  addMailAccount: (account) => unwrap(commands.addMailAccount(account)),
  addOAuthAccount: (provider, address) => unwrap(commands.addOauthAccount(provider, address)),
  signInMailAccountAgain: (accountId) => done(commands.signInMailAccountAgain(accountId)),
  mailAccounts: () => unwrap(commands.mailAccounts()),
  removeMailAccount: (accountId) => done(commands.removeMailAccount(accountId)),
  syncNow: () => done(commands.syncNow()),

  folders: (accountId) => unwrap(commands.folders(accountId)),
  messages: (accountId, folder, offset, limit) =>
    unwrap(commands.messages(accountId, folder, offset, limit)),
  search: (accountId, query, limit) => unwrap(commands.search(accountId, query, limit)),
  openMessage: (id) => unwrap(commands.openMessage(id)),
  mailFrameUrl: (id) => convertFileSrc(String(id), "sealpost-mail"),
  allowRemoteContent: (id) => unwrap(commands.allowRemoteContent(id)),
  setFlag: (id, flag, on) => done(commands.setFlag(id, flag, on)),
  saveAttachment: (id, index) => unwrap(commands.saveAttachment(id, index)),
  openLink: (url) => done(commands.openLink(url)),

  recipientKeys: (addresses) => unwrap(commands.recipientKeys(addresses)),
  pickAttachments: () => unwrap(commands.pickAttachments()),
  saveDraft: (compose) => unwrap(commands.saveDraft(compose)),
  drafts: (accountId) => unwrap(commands.drafts(accountId)),
  openDraft: (accountId, id) => unwrap(commands.openDraft(accountId, id)),
  deleteDraft: (id) => unwrap(commands.deleteDraft(id)),
  outbox: (accountId) => unwrap(commands.outbox(accountId)),
  resendOutboxEntry: (accountId, id) => done(commands.resendOutboxEntry(accountId, id)),
  discardOutboxEntry: (accountId, id) => done(commands.discardOutboxEntry(accountId, id)),
  send: (compose) => done(commands.send(compose)),

  devices: () => unwrap(commands.devices()),
  revokeDevice: (id) => done(commands.revokeDevice(id)),
  myKey: () => unwrap(commands.myKey()),
  exportPublicKey: () => unwrap(commands.exportPublicKey()),
  importKey: (passphrase) => unwrap(commands.importKey(passphrase)),
  publishKey: (address) => unwrap(commands.publishKey(address)),

  onMailProgress: (handler) => listen<MailProgress>(MAIL_PROGRESS, (e) => handler(e.payload)),
  onMailChanged: (handler) => listen<MailChanged>(MAIL_CHANGED, (e) => handler(e.payload)),
  onOutbox: (handler) => listen<OutboxEvent>(OUTBOX, (e) => handler(e.payload)),
  onLocked: (handler) => listen(LOCKED, () => handler()),
  onMessageChanged: (handler) =>
    listen<MessageChanged>(MESSAGE_CHANGED, (e) => handler(e.payload)),
};

type Answer<T> = { status: "ok"; data: T } | { status: "error"; error: AppError };

/** A command's answer, or its `{ code, message }` thrown as a `BackendError`. */
async function unwrap<T>(answer: Promise<Answer<T>>): Promise<T> {
  let result: Answer<T>;
  try {
    result = await answer;
  } catch (raw) {
    throw toBackendError(raw);
  }
  if (result.status === "error") throw toBackendError(result.error);
  return result.data;
}

/** A command that answers nothing. */
async function done(answer: Promise<Answer<null>>): Promise<void> {
  await unwrap(answer);
}

/** The shell rejects with `{ code, message }`; Tauri itself (e.g. the ACL) rejects with a string. */
function toBackendError(raw: unknown): BackendError {
  if (typeof raw === "object" && raw !== null && "code" in raw && "message" in raw) {
    return new BackendError(String(raw.code), String(raw.message));
  }
  return new BackendError("ipc", String(raw));
}
