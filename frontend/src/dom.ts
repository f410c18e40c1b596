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
