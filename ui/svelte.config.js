// Svelte compiler settings, read by vite-plugin-svelte and svelte-check.
// Runes mode everywhere; TypeScript in <script lang="ts"> is stripped by Svelte itself.
export default {
  compilerOptions: {
    runes: true,
  },
};
