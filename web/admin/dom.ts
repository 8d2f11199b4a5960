// Small DOM helpers: elements built with textContent only (player names are never parsed as HTML), and keyed
// updates so polling does not rebuild rows a user is about to click.

type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "class") el.className = String(v);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el as T;
}

/** Keeps `parent`'s children in the order of `keys`, reusing each key's element (made by `make` the first time)
 * and updating it with `update`. */
export function keyed<T>(
  parent: HTMLElement,
  items: T[],
  key: (item: T) => string,
  make: (item: T) => HTMLElement,
  update: (el: HTMLElement, item: T) => void,
): void {
  const old = new Map<string, HTMLElement>();
  for (const child of Array.from(parent.children) as HTMLElement[]) {
    if (child.dataset.key !== undefined) old.set(child.dataset.key, child);
  }
  let at = 0;
  for (const item of items) {
    const k = key(item);
    let el = old.get(k);
    if (el) old.delete(k);
    else {
      el = make(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (parent.children[at] !== el) parent.insertBefore(el, parent.children[at] ?? null);
    at++;
  }
  for (const el of old.values()) el.remove();
}

/** Sets text only when it changed (no layout churn on every poll). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : "-";
}

export function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** A button that asks for a second click before `run` (for actions that disconnect players). */
export function confirmButton(label: string, confirmLabel: string, run: () => void, cls = "small danger"): HTMLButtonElement {
  const b = h("button", { class: cls, type: "button", text: label });
  let armed: number | undefined;
  b.addEventListener("click", () => {
    if (armed === undefined) {
      b.textContent = confirmLabel;
      b.classList.add("confirm");
      armed = window.setTimeout(() => {
        armed = undefined;
        b.textContent = label;
        b.classList.remove("confirm");
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = undefined;
    b.textContent = label;
    b.classList.remove("confirm");
    run();
  });
  return b;
}
