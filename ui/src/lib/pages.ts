/**
 * The message list's page cache: fixed-size pages of rows, keyed by page index,
 * the least recently used dropped first, so scrolling through 100,000 messages
 * keeps a bounded number of rows in memory and asks the backend for each page once.
 */
import type { MessagePage, MessageSummary } from "../backend";

/** Row height of the message list in pixels; must match `.message-row` in style.css. */
export const ROW_HEIGHT = 56;

/** What the message list shows: a folder, or search hits. */
export type Source =
  | { kind: "folder"; accountId: string; folder: string }
  | { kind: "search"; accountId: string; query: string };

/** Rows per page, and per `messages(…, offset, PAGE_SIZE)` call. */
export const PAGE_SIZE = 100;

/** A bounded LRU of pages. */
export class PageCache {
  readonly #pages = new Map<number, MessageSummary[]>();
  readonly #capacity: number;

  constructor(capacity = 40) {
    this.#capacity = capacity;
  }

  /** The page at `index`, marking it most recently used. */
  get(index: number): MessageSummary[] | undefined {
    const page = this.#pages.get(index);
    if (page) {
      this.#pages.delete(index);
      this.#pages.set(index, page);
    }
    return page;
  }

  has(index: number): boolean {
    return this.#pages.has(index);
  }

  /** Stores a page, dropping the least recently used one past the capacity. */
  set(index: number, rows: MessageSummary[]): void {
    this.#pages.delete(index);
    this.#pages.set(index, rows);
    while (this.#pages.size > this.#capacity) {
      const oldest = this.#pages.keys().next();
      if (oldest.done) {
        break;
      }
      this.#pages.delete(oldest.value);
    }
  }

  /** Stores the rows of a backend answer under the pages they cover. */
  store(page: MessagePage): void {
    for (let start = 0; start < page.items.length; start += PAGE_SIZE) {
      this.set(Math.floor((page.offset + start) / PAGE_SIZE), page.items.slice(start, start + PAGE_SIZE));
    }
  }

  /** The row at absolute position `row`, when its page is here (does not touch the LRU order). */
  row(row: number): MessageSummary | undefined {
    return this.#pages.get(Math.floor(row / PAGE_SIZE))?.[row % PAGE_SIZE];
  }

  /** Replaces one row wherever it is cached (after a flag change). */
  update(id: number, change: (row: MessageSummary) => MessageSummary): void {
    for (const [index, rows] of this.#pages) {
      const at = rows.findIndex((r) => r.id === id);
      if (at !== -1) {
        const next = rows.slice();
        next[at] = change(rows[at] as MessageSummary);
        this.#pages.set(index, next);
      }
    }
  }

  /** The cached page indexes, least recently used first. */
  indexes(): number[] {
    return [...this.#pages.keys()];
  }

  clear(): void {
    this.#pages.clear();
  }

  get size(): number {
    return this.#pages.size;
  }
}

/** The page indexes rows `first..last` (inclusive) fall in. */
export function pagesFor(first: number, last: number): number[] {
  if (last < first) {
    return [];
  }
  const pages: number[] = [];
  for (let p = Math.floor(first / PAGE_SIZE); p <= Math.floor(last / PAGE_SIZE); p++) {
    pages.push(p);
  }
  return pages;
}
