/** The sync status line in words ("Syncing INBOX 120/400", "Offline — retrying in 30 s: …"). */
import type { MailProgress, OutboxEvent } from "../backend";

export function progressText(p: MailProgress | null): string {
  if (p === null) {
    return "Not synced yet";
  }
  switch (p.phase) {
    case "connecting":
      return "Connecting to the mail server…";
    case "syncing": {
      const folder = p.folder ?? "mail";
      return p.done !== null && p.total !== null
        ? `Syncing ${folder} ${p.done}/${p.total}`
        : `Syncing ${folder}…`;
    }
    case "offline": {
      const retry = p.retryInSecs !== null ? ` — retrying in ${p.retryInSecs} s` : "";
      return `Offline${retry}${p.message ? `: ${p.message}` : ""}`;
    }
    case "idle":
      return "Up to date";
  }
}

export function outboxText(o: OutboxEvent): string {
  switch (o.step) {
    case "queued":
      return "Queued in the outbox…";
    case "connecting":
      return "Connecting to the mail server…";
    case "sending":
      return "Sending…";
    case "savingToSent":
      return "Sent; saving a copy in Sent…";
    case "sent":
      return "Sent";
    case "failed":
      return `Failed: ${o.message ?? "the mail server refused it"} — it stays in the outbox and will be retried`;
    case "inDoubt":
      return `It may have been sent (${o.message ?? "the connection ended before the server answered"}) — it waits in the outbox: send it again or discard it`;
  }
}
