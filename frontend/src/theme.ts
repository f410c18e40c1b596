// Light and dark theme: the user's choice is kept in localStorage; without one we
// follow the system's prefers-color-scheme (also when it changes while the page is open).

export type ThemeName = "light" | "dark";

const STORAGE_KEY = "runtable.theme";
const darkQuery = (): MediaQueryList => window.matchMedia("(prefers-color-scheme: dark)");

function storedTheme(): ThemeName | null {
  try {
    const value = window.localStorage.getItem(STORAGE_KEY);
    return value === "light" || value === "dark" ? value : null;
  } catch {
    return null; // storage disabled: behave as if nothing was stored
  }
}

function storeTheme(name: ThemeName): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, name);
  } catch {
    // storage disabled: the choice lasts until the page is closed
  }
}

export function currentTheme(): ThemeName {
  return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
}

/** Apply a theme to the page and to the grid (AG Grid reads data-ag-theme-mode). */
export function applyTheme(name: ThemeName): void {
  const root = document.documentElement;
  root.dataset.theme = name;
  root.dataset.agThemeMode = name;
  root.style.colorScheme = name;
}

function updateToggle(button: HTMLButtonElement, name: ThemeName): void {
  const next = name === "dark" ? "light" : "dark";
  button.textContent = next === "dark" ? "☾ Dark" : "☀ Light";
  button.title = `Switch to the ${next} theme`;
  button.setAttribute("aria-label", `Switch to the ${next} theme`);
  button.setAttribute("aria-pressed", String(name === "dark"));
}

/** Apply the remembered or preferred theme and make `button` switch between the two. */
export function setupThemeToggle(button: HTMLButtonElement): void {
  const query = darkQuery();
  const initial = storedTheme() ?? (query.matches ? "dark" : "light");
  applyTheme(initial);
  updateToggle(button, initial);

  button.addEventListener("click", () => {
    const next: ThemeName = currentTheme() === "dark" ? "light" : "dark";
    storeTheme(next);
    applyTheme(next);
    updateToggle(button, next);
  });

  query.addEventListener("change", (event) => {
    if (storedTheme() === null) {
      const name: ThemeName = event.matches ? "dark" : "light";
      applyTheme(name);
      updateToggle(button, name);
    }
  });
}
