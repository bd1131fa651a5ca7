/** Entry point loaded by index.html: mounts the placeholder screen on the real backend. */
import "./style.css";
import { mount } from "./app";
import { tauriBackend } from "./backend";

const root = document.getElementById("app");
if (root) {
  void mount(root, tauriBackend);
}
