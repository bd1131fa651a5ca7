/**
 * The document of the mail's frame. The frame is sandboxed with an EMPTY sandbox
 * attribute (no scripts, no same-origin); its document also carries its own CSP,
 * so even if the sandbox were loosened nothing could load: no remote images, no
 * fonts, no scripts, only inline styles and data: images.
 */

/** What a `mailto:` link asks for; null when it is not one (or names no address). */
export function parseMailto(link: string): { to: string[]; subject: string } | null {
  if (!/^mailto:/i.test(link)) return null;
  const rest = link.slice("mailto:".length);
  const [path = "", query = ""] = rest.split("?", 2);
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const to = decode(path)
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const subject = decode(new URLSearchParams(query).get("subject") ?? "");
  return to.length > 0 ? { to, subject } : null;
}
