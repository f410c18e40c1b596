// The CodeMirror side of the context-file editor. editor.ts loads this module with a
// dynamic import() the first time the editor opens, so the table's first load never
// waits for CodeMirror.

import { basicSetup } from "codemirror";
import type { CompletionContext, CompletionResult } from "@codemirror/autocomplete";
import { indentWithTab } from "@codemirror/commands";
import { python, pythonLanguage } from "@codemirror/lang-python";
// Both come with @codemirror/lang-python: token classes (tok-*) coloured by editor.css,
// so the colours follow the page's light and dark themes.
import { indentService, indentUnit, syntaxHighlighting, syntaxTree, type IndentContext } from "@codemirror/language";
import { classHighlighter } from "@lezer/highlight";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { MergeView } from "@codemirror/merge";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";

/** One message about the text: `line` and `column` are 1-based (null: unknown). */
export interface Marker {
  severity: "error" | "warning";
  line: number | null;
  column: number | null;
  message: string;
}

export interface CodeEditor {
  readonly view: EditorView;
  text(): string;
  /** Replace the whole text (one undoable step). */
  setText(text: string): void;
  /** Show `markers` as lint diagnostics at their lines (replacing earlier ones). */
  mark(markers: Marker[]): void;
  /** Put the cursor on `line` (1-based) and scroll it into view. */
  goTo(line: number, column?: number | null): void;
  destroy(): void;
}

export interface EditorHooks {
  /** The text changed (typed, pasted, replaced). */
  changed(): void;
  /** Ctrl-S / Cmd-S. */
  save(): void;
  /** Names of the context's variables, offered after `"var#`. */
  variableNames(): string[];
}

/** `meta#` keys a context file can ask for (docs/context-files.md). */
const META_KEYS = ["run_number", "proposal", "proposal_path"];

/**
 * The indent unit a file uses: the step from a line ending in ":" to the next line, the
 * most common one wins; 4 spaces for a file without blocks (PEP 8).
 */
export function detectIndentUnit(text: string): string {
  const counts = new Map<string, number>();
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (!/:\s*(#.*)?$/.test(line)) return;
    const next = lines.slice(i + 1).find((l) => /\S/.test(l));
    if (next === undefined) return;
    const own = /^[ \t]*/.exec(line)?.[0] ?? "";
    const inner = /^[ \t]*/.exec(next)?.[0] ?? "";
    if (inner.length <= own.length || !inner.startsWith(own)) return;
    const step = inner.slice(own.length);
    if (/^( +|\t)$/.test(step)) counts.set(step, (counts.get(step) ?? 0) + 1);
  });
  let best = "    ";
  let most = 0;
  for (const [step, n] of counts) {
    if (n > most) [best, most] = [step, n];
  }
  return best;
}

/** Statements after which nothing in the same block runs. */
const BLOCK_END = /^\s*(return|raise|pass|continue|break)\b/;

/**
 * A new line after `return` (or raise/pass/continue/break), blank lines between
 * included, starts one level out: the next thing typed is not in the function any more.
 * Without this a new `@Variable` typed at the end of the file would land inside the
 * previous function, where it is never a column. Anything else: the language decides.
 */
function indentAfterBlockEnd(cx: IndentContext, pos: number): number | undefined {
  const doc = cx.state.doc;
  let prev: { text: string; from: number };
  if (cx.simulatedBreak === pos) {
    prev = cx.lineAt(pos, -1);
  } else {
    const n = doc.lineAt(pos).number;
    if (n === 1) return undefined;
    prev = doc.line(n - 1);
  }
  while (!/\S/.test(prev.text)) {
    if (prev.from === 0) return undefined;
    prev = doc.lineAt(prev.from - 1);
  }
  // A statement that goes on (open bracket, comma, backslash) is not finished.
  if (!BLOCK_END.test(prev.text) || /[([{,\\]\s*(#.*)?$/.test(prev.text)) return undefined;
  const start = prev.from + prev.text.search(/\S/);
  const statement = syntaxTree(cx.state).resolveInner(start, 1).parent;
  if (statement === null || !statement.name.endsWith("Statement")) return undefined;
  return Math.max(0, cx.lineIndent(prev.from, -1) - cx.unit);
}

/** Completes the names after `"var#` and the keys after `"meta#` in annotations. */
function annotationCompletion(variableNames: () => string[]) {
  return (cx: CompletionContext): CompletionResult | null => {
    const match = cx.matchBefore(/["'](var|meta)#[\w.]*$/);
    if (match === null) return null;
    const hash = match.text.indexOf("#");
    const names = match.text.slice(1, hash) === "var" ? variableNames() : META_KEYS;
    // Quotes don't close themselves here (see createEditor): a pick closes the string.
    const quote = match.text[0] ?? '"';
    const close = cx.state.sliceDoc(cx.pos, cx.pos + 1) === quote ? "" : quote;
    return {
      from: match.from + hash + 1,
      options: names.map((label) => ({ label, type: "variable", apply: label + close })),
      validFor: /^[\w.]*$/,
    };
  };
}

/** A Python editor with line numbers, search, bracket matching and lint markers. */
export function createEditor(parent: HTMLElement, text: string, hooks: EditorHooks): CodeEditor {
  const indent = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text,
      extensions: [
        // Before basicSetup, so that Mod-s saves instead of reaching the browser.
        keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (hooks.save(), true) }]),
        // Tab and Shift+Tab indent and dedent; Escape then Tab leaves the editor
        // (CodeMirror's way out for keyboard users).
        keymap.of([indentWithTab]),
        basicSetup,
        python(),
        indent.of(indentUnit.of(detectIndentUnit(text))),
        indentService.of(indentAfterBlockEnd),
        // Brackets close themselves; quotes don't: with docstrings, auto-closed quotes
        // end as `"""…"""""`.
        pythonLanguage.data.of({ closeBrackets: { brackets: ["(", "[", "{"] } }),
        pythonLanguage.data.of({ autocomplete: annotationCompletion(hooks.variableNames) }),
        syntaxHighlighting(classHighlighter),
        lintGutter(),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) hooks.changed();
        }),
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    setText: (next: string) => {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: next },
        effects: indent.reconfigure(indentUnit.of(detectIndentUnit(next))),
      });
    },
    mark: (markers: Marker[]) => {
      view.dispatch(setDiagnostics(view.state, markers.map((m) => diagnostic(view.state, m))));
    },
    goTo: (line: number, column?: number | null) => {
      const pos = position(view.state, line, column ?? null);
      view.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: "center" }) });
      view.focus();
    },
    destroy: () => view.destroy(),
  };
}

function position(state: EditorState, line: number, column: number | null): number {
  const n = Math.min(Math.max(line, 1), state.doc.lines);
  const at = state.doc.line(n);
  return column === null ? at.from : Math.min(at.from + Math.max(column - 1, 0), at.to);
}

function diagnostic(state: EditorState, marker: Marker): Diagnostic {
  // Without a line, the message belongs to the file: show it on the first line.
  const line = state.doc.line(Math.min(Math.max(marker.line ?? 1, 1), state.doc.lines));
  const from = marker.column === null ? line.from : position(state, line.number, marker.column);
  return { from, to: Math.max(line.to, from), severity: marker.severity, message: marker.message };
}

/** A read-only side-by-side comparison of two texts, long unchanged parts folded. */
export function createComparison(parent: HTMLElement, left: string, right: string): { destroy(): void } {
  const readOnly: Extension = [
    basicSetup,
    python(),
    syntaxHighlighting(classHighlighter),
    EditorState.readOnly.of(true),
    EditorView.editable.of(false),
  ];
  const merge = new MergeView({
    parent,
    a: { doc: left, extensions: readOnly },
    b: { doc: right, extensions: readOnly },
    collapseUnchanged: { margin: 3, minSize: 6 },
    gutter: true,
  });
  return { destroy: () => merge.destroy() };
}
