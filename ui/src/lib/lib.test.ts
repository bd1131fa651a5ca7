import { expect, test } from "vitest";
import { BackendError, type MessageSummary } from "../backend";
import { errorText } from "./errors";
import { formatSize, groupFingerprint, splitAddresses } from "./format";
import { parseMailto } from "./mail";
import { PAGE_SIZE, PageCache, pagesFor } from "./pages";
import { progressText } from "./status";

function rows(offset: number, n: number): MessageSummary[] {
  return Array.from({ length: n }, (_, i) => ({
    id: offset + i + 1,
    folder: "INBOX",
    uid: offset + i + 1,
    flags: [],
    date: 0,
    from: "",
    subject: "",
    encrypted: false,
    signed: false,
    state: "ready",
    size: 0,
  }));
}

test("the page cache drops the least recently used page", () => {
  const cache = new PageCache(2);
  cache.set(0, rows(0, PAGE_SIZE));
  cache.set(1, rows(100, PAGE_SIZE));
  cache.get(0);
  cache.set(2, rows(200, PAGE_SIZE));
  expect(cache.indexes()).toEqual([0, 2]);
  expect(cache.row(250)?.id).toBe(251);
  expect(cache.row(150)).toBeUndefined();
});

test("a search answer of 200 rows fills two pages", () => {
  const cache = new PageCache();
  cache.store({ total: 200, offset: 0, items: rows(0, 200) });
  expect(cache.indexes()).toEqual([0, 1]);
  expect(cache.row(199)?.id).toBe(200);
});

test("the pages a window of rows falls in", () => {
  expect(pagesFor(0, 30)).toEqual([0]);
  expect(pagesFor(95, 105)).toEqual([0, 1]);
  expect(pagesFor(5, 4)).toEqual([]);
});

test("errors show the core's words as a sentence, never a bare code", () => {
  expect(errorText(new BackendError("wrong_password", "That password is not right"))).toBe(
    "That password is not right.",
  );
  expect(errorText(new BackendError("mail_check", "incoming mail (IMAP): auth failed"))).toBe(
    "Incoming mail (IMAP): auth failed.",
  );
  // No words from the core: the code is named, in a sentence.
  expect(errorText(new BackendError("internal", " "))).toBe("Something went wrong (internal).");
  expect(errorText(new BackendError("ipc", "command not allowed"))).toBe(
    "The window could not reach the app's backend. Command not allowed.",
  );
  expect(errorText(new Error("boom"))).toBe("Something went wrong: Boom.");
});

test("small formatters", () => {
  expect(groupFingerprint("abcd1234ef567890")).toBe("ABCD 1234 EF56 7890");
  expect(formatSize(999)).toBe("999 bytes");
  expect(formatSize(48_213)).toBe("48 KB");
  expect(formatSize(3_400_000)).toBe("3.4 MB");
  expect(splitAddresses(" a@x.org, ,b@y.org; c@z.org ")).toEqual(["a@x.org", "b@y.org", "c@z.org"]);
  expect(progressText(null)).toBe("Not synced yet");
});

test("mailto links", () => {
  expect(parseMailto("mailto:a@x.org?subject=Hi%20there")).toEqual({ to: ["a@x.org"], subject: "Hi there" });
  expect(parseMailto("mailto:a@x.org,b@y.org")).toEqual({ to: ["a@x.org", "b@y.org"], subject: "" });
  expect(parseMailto("mailto:")).toBeNull();
  expect(parseMailto("https://x.org")).toBeNull();
});
