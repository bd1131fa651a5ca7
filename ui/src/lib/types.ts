/** Types the screens pass between each other (not part of the backend contract). */

/** How onboarding ended: a new account (no mail accounts yet) or a sign-in. */
export interface Finished {
  user: string;
  created: boolean;
  failedAttempts: number;
}

/** What a new compose starts with (a reply fills it from the opened message). */
export interface ComposeSeed {
  accountId: string | null;
  to: string[];
  cc: string[];
  subject: string;
  body: string;
  inReplyTo: string | null;
}

/** The app's views once unlocked. */
export type View = "mailbox" | "compose" | "settings" | "add-account";
