import { afterEach, expect, test } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { mount, TAGLINE } from "./app";
import { tauriBackend } from "./backend";

afterEach(() => {
  clearMocks();
  document.body.replaceChildren();
});

function newRoot(): HTMLElement {
  const root = document.createElement("main");
  document.body.append(root);
  return root;
}

test("shows the version returned by the backend", async () => {
  const commands: string[] = [];
  mockIPC((cmd) => {
    commands.push(cmd);
    if (cmd === "app_info") {
      return { name: "Sealpost", version: "9.8.7-test", syncServer: "http://127.0.0.1:8443" };
    }
    throw new Error(`unexpected command ${cmd}`);
  });
  const root = newRoot();

  await mount(root, tauriBackend);

  expect(commands).toEqual(["app_info"]);
  expect(root.querySelector("h1")?.textContent).toBe("Sealpost");
  expect(root.querySelector(".version")?.textContent).toBe(
    "Version 9.8.7-test · sync server http://127.0.0.1:8443",
  );
  expect(root.textContent).toContain(TAGLINE);
});

test("shows the error code when the backend refuses", async () => {
  mockIPC(() => {
    throw { code: "internal", message: "boom" };
  });
  const root = newRoot();

  await mount(root, tauriBackend);

  const version = root.querySelector(".version");
  expect(version?.textContent).toBe("Version unavailable (internal)");
  expect(version?.classList.contains("error")).toBe(true);
});
