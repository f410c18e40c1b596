// The CodeMirror side of the context-file editor. editor.ts loads this module with a
// dynamic import() the first time the editor opens, so the table's first load never
// waits for CodeMirror.

import { basicSetup } from "codemirror";
import { python } from "@codemirror/lang-python";
// Both come with @codemirror/lang-python: token classes (tok-*) coloured by editor.css,
// so the colours follow the page's light and dark themes.
import { syntaxHighlighting } from "@codemirror/language";
import { classHighlighter } from "@lezer/highlight";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { MergeView } from "@codemirror/merge";
import { EditorState, type Extension } from "@codemirror/state";
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
}

/** A Python editor with line numbers, search, bracket matching and lint markers. */
export function createEditor(parent: HTMLElement, text: string, hooks: EditorHooks): CodeEditor {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text,
      extensions: [
        // Before basicSetup, so that Mod-s saves instead of reaching the browser.
        keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (hooks.save(), true) }]),
        basicSetup,
        python(),
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
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: next } });
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
