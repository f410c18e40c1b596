// Building and finding pieces of DOM in code: text is always set as text, never parsed as HTML.

/** What `el` and `button` set on a new element besides its children. */
export interface ElementProps {
  className?: string | undefined;
  text?: string | undefined;
  title?: string | undefined;
}

/** A `tag` element with a class, text and title, holding `children`. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: ElementProps = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className !== undefined) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title !== undefined) node.title = props.title;
  node.append(...children);
  return node;
}

/** A `<button type="button">` that calls `onClick`; its class is `rt-button` unless given. */
export function button(
  text: string,
  onClick: () => void,
  props: Omit<ElementProps, "text"> = {},
): HTMLButtonElement {
  const b = el("button", { className: props.className ?? "rt-button", title: props.title, text });
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

/** The element of `index.html` with this id, which must be a `type` (else a clear error). */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) {
    throw new Error(`index.html has no <${type.name}> with id "${id}"`);
  }
  return found;
}

/** The tag of each element a view keeps, by the element's name. */
export type PartTags = Record<string, keyof HTMLElementTagNameMap>;

/** The elements built by `parts`, each typed by its tag. */
export type Parts<S extends PartTags> = { readonly [K in keyof S]: HTMLElementTagNameMap[S[K]] };

/**
 * The elements a view keeps, built at once, each of class `<prefix>-<name>` (a
 * camelCase name becomes kebab-case), so an element's class follows from its name.
 *
 *     parts("ed", { status: "div", diffNote: "p" })
 *     // { status: <div class="ed-status">, diffNote: <p class="ed-diff-note"> }
 */
export function parts<S extends PartTags>(prefix: string, tags: S): Parts<S> {
  const built: Record<string, HTMLElement> = {};
  for (const [name, tag] of Object.entries(tags)) {
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    built[name] = el(tag, { className: `${prefix}-${kebab}` });
  }
  return built as Parts<S>;
}
