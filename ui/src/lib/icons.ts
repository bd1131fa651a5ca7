/** The names of the line icons drawn by components/Icon.svelte. */
export type IconName =
  | "lock"
  | "lock-off"
  | "pen"
  | "flag"
  | "inbox"
  | "send"
  | "draft"
  | "trash"
  | "folder"
  | "archive"
  | "warning"
  | "check"
  | "x"
  | "key"
  | "mail"
  | "question"
  | "minus";
