/**
 * Every failure in words. Screens never show a bare code: `errorText` turns a
 * `BackendError` (the core's snake_case codes, or `ipc`) into a sentence, adding
 * the backend's own message where it tells the user something the sentence
 * cannot (which server, what it answered).
 */
import { BackendError } from "../backend";

/** The sentence for each code, and whether the backend's message adds to it. */
const WORDS: Record<string, { text: string; detail: boolean }> = {
  weak_password: { text: "This password is too easy to guess. Choose a longer one.", detail: false },
  wrong_password: { text: "Wrong password. Try again.", detail: false },
  login_failed: { text: "The user name or the password is wrong.", detail: false },
  rate_limited: {
    text: "Too many attempts. Wait a few minutes before you try again.",
    detail: false,
  },
  account_exists: { text: "This user name is taken. Choose another one.", detail: false },
  sync_unreachable: {
    text: "The Sealpost server cannot be reached. Check your connection and try again.",
    detail: true,
  },
  sync_refused: { text: "The Sealpost server refused the request.", detail: true },
  bad_user_name: { text: "This user name cannot be used.", detail: true },
  profile_exists: { text: "There is already an account on this device.", detail: false },
  no_own_key: { text: "You do not have a key yet, so nothing can be signed or decrypted.", detail: false },
  no_recipient_key: {
    text: "A recipient has no key, so the message cannot be encrypted.",
    detail: true,
  },
  mail: { text: "The mail server reported a problem.", detail: true },
  mail_check: { text: "The mail server did not accept these settings.", detail: true },
  oauth_sign_in_required: {
    text: "The mail provider ended Sealpost's sign-in: use Sign in again in Settings.",
    detail: true,
  },
  not_in_mail_store: { text: "That is no longer there.", detail: false },
  bad_address: { text: "This is not a valid e-mail address.", detail: true },
  locked: { text: "Sealpost is locked. Unlock it to continue.", detail: false },
  internal: { text: "Something went wrong inside Sealpost.", detail: true },
  ipc: { text: "The window could not reach the app's backend.", detail: true },
};

/** The error in words, for a status line or an alert. */
export function errorText(error: unknown): string {
  if (error instanceof BackendError) {
    const words = WORDS[error.code];
    if (!words) {
      return error.message ? `${error.message}.` : `Something went wrong (${error.code}).`;
    }
    return words.detail && error.message ? `${words.text} ${sentence(error.message)}` : words.text;
  }
  if (error instanceof Error && error.message) {
    return `Something went wrong: ${sentence(error.message)}`;
  }
  return "Something went wrong.";
}

function sentence(message: string): string {
  const trimmed = message.trim();
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}
