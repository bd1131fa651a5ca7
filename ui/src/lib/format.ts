/** Small formatters shared by the screens; pure, so tests can pin their output. */
import type { IconName } from "./icons";

/** A message date: the time for today, else the day (and the year when not this year). */
export function formatDate(unixSecs: number, now: Date = new Date()): string {
  if (unixSecs <= 0) {
    return "Unknown date";
  }
  const date = new Date(unixSecs * 1000);
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString(undefined, {
    day: "numeric",
    month: "short",
    ...(sameYear ? {} : { year: "numeric" }),
  });
}

/** A full date and time, for the reader's header and settings. */
export function formatDateTime(unixSecs: number): string {
  if (unixSecs <= 0) {
    return "Unknown date";
  }
  return new Date(unixSecs * 1000).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

/** Bytes in the unit a person reads ("12 KB", "3.4 MB"). */
export function formatSize(bytes: number): string {
  if (bytes < 1000) {
    return `${bytes} bytes`;
  }
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit] ?? "GB"}`;
}

/** A fingerprint in groups of four ("ABCD 1234 …"), the way people compare them aloud. */
export function groupFingerprint(fingerprint: string): string {
  const compact = fingerprint.replace(/\s+/g, "").toUpperCase();
  return (compact.match(/.{1,4}/g) ?? []).join(" ");
}

/** Comma- or semicolon-separated addresses, trimmed, empties dropped. */
export function splitAddresses(text: string): string[] {
  return text
    .split(/[,;]/)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

/** Whether an IMAP flag list holds `\Seen` / `\Flagged`. */
export function hasFlag(flags: string[], flag: "\\Seen" | "\\Flagged"): boolean {
  return flags.some((f) => f.toLowerCase() === flag.toLowerCase());
}

/** A folder's name in words, with the special-use folders named the same everywhere. */
export function folderLabel(name: string, specialUse: string | null): string {
  switch (specialUse) {
    case "Inbox":
      return "Inbox";
    case "Sent":
      return "Sent";
    case "Drafts":
      return "Drafts";
    case "Trash":
      return "Trash";
    case "Junk":
      return "Junk";
    case "Archive":
      return "Archive";
    case "Flagged":
      return "Flagged";
    case "All":
      return "All mail";
    default:
      return name.toUpperCase() === "INBOX" ? "Inbox" : name;
  }
}

/** Where a special-use folder goes in the list; other folders follow, by name. */
export function folderRank(name: string, specialUse: string | null): number {
  const order = ["Inbox", "Drafts", "Sent", "Archive", "Flagged", "All", "Junk", "Trash"];
  const use = specialUse ?? (name.toUpperCase() === "INBOX" ? "Inbox" : null);
  const index = use === null ? -1 : order.indexOf(use);
  return index === -1 ? order.length : index;
}

/** A decorative icon for a folder (the name beside it carries the meaning). */
export function folderIcon(name: string, specialUse: string | null): IconName {
  const use = specialUse ?? (name.toUpperCase() === "INBOX" ? "Inbox" : null);
  switch (use) {
    case "Inbox":
      return "inbox";
    case "Sent":
      return "send";
    case "Drafts":
      return "draft";
    case "Trash":
      return "trash";
    case "Junk":
      return "warning";
    case "Archive":
      return "archive";
    case "Flagged":
      return "flag";
    default:
      return "folder";
  }
}
