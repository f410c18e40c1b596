// Exporting the visible table — the columns shown, in their order, and the rows that
// pass the filters, in their sort order — as CSV, Excel (.xlsx) or Markdown.
//
// Excel: AG Grid Community exports CSV only, and the big spreadsheet libraries weigh
// hundreds of kB. An .xlsx file is a zip of a few XML files; we write those ourselves
// (numbers as numbers, text as inline strings) and zip them with fflate (8 kB, no
// dependencies).

import { strToU8, zipSync } from "fflate";

import { booleanText, exportText, formatNumber } from "./format";
import type { CellInfo, Value } from "./table";

/** One exported cell: the raw value for CSV/Excel, the shown text for Markdown. */
export interface ExportCell {
  value: Value;
  info?: CellInfo | undefined;
  /** The text shown in the table, when it is not derived from the value (times). */
  text?: string;
}

export interface ExportTable {
  headers: string[];
  rows: ExportCell[][];
}

function plain(cell: ExportCell): string | number | boolean | null {
  const kind = cell.info?.kind;
  if (kind === "image" || kind === "trendline" || kind === "complex") {
    return exportText(cell.value, cell.info);
  }
  if (kind === "error" || kind === "skip") {
    return null;
  }
  return cell.value;
}

/** RFC 4180 CSV; cells that a spreadsheet would run as a formula are prefixed with '. */
export function toCsv(table: ExportTable): string {
  const quote = (text: string): string => {
    const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const lines = [table.headers.map(quote).join(",")];
  for (const row of table.rows) {
    lines.push(
      row
        .map((cell) => {
          const v = plain(cell);
          if (v === null) return "";
          if (typeof v === "boolean") return booleanText(v);
          return typeof v === "number" ? String(v) : quote(String(v));
        })
        .join(","),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}

/**
 * Tab-separated values for pasting into a spreadsheet: numbers in full, text on one
 * line, times as shown (without their offset, so that spreadsheets read them as times).
 */
export function toTsv(table: ExportTable): string {
  const field = (v: string | number | boolean | null): string =>
    v === null ? "" : typeof v === "boolean" ? booleanText(v) : String(v).replace(/[\t\r\n]+/g, " ");
  const value = (cell: ExportCell): string | number | boolean | null =>
    typeof cell.value === "string" && cell.text !== undefined && cell.info === undefined ? cell.text : plain(cell);
  const lines = [table.headers.map(field).join("\t")];
  for (const row of table.rows) lines.push(row.map((cell) => field(value(cell))).join("\t"));
  return `${lines.join("\n")}\n`;
}

/** A GitHub-flavoured Markdown table of the shown text. */
export function toMarkdown(table: ExportTable): string {
  const escape = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const lines = [
    `| ${table.headers.map(escape).join(" | ")} |`,
    `| ${table.headers.map(() => "---").join(" | ")} |`,
  ];
  for (const row of table.rows) {
    lines.push(`| ${row.map((cell) => escape(markdownText(cell))).join(" | ")} |`);
  }
  return `${lines.join("\n")}\n`;
}

function markdownText(cell: ExportCell): string {
  if (cell.text !== undefined) return cell.text;
  if (cell.info?.kind === "image" || cell.info?.kind === "trendline") return exportText(cell.value, cell.info);
  if (typeof cell.value === "number" && cell.info === undefined) {
    return formatNumber(cell.value);
  }
  return exportText(cell.value, cell.info);
}

function xml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    // Characters XML 1.0 cannot hold at all.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "");
}

function columnName(index: number): string {
  let name = "";
  let n = index + 1;
  while (n > 0) {
    const rem = (n - 1) % 26;
    name = String.fromCharCode(65 + rem) + name;
    n = Math.floor((n - 1) / 26);
  }
  return name;
}

/** A minimal Office Open XML workbook with one sheet; header row bold and frozen. */
export function toXlsx(table: ExportTable, sheetName = "runs"): Uint8Array {
  const cell = (ref: string, v: string | number | boolean | null, style = 0): string => {
    const s = style > 0 ? ` s="${style}"` : "";
    if (v === null || v === "") return "";
    if (typeof v === "number") {
      return Number.isFinite(v) ? `<c r="${ref}"${s}><v>${v}</v></c>` : `<c r="${ref}" t="inlineStr"${s}><is><t>${xml(String(v))}</t></is></c>`;
    }
    if (typeof v === "boolean") return `<c r="${ref}" t="b"${s}><v>${v ? 1 : 0}</v></c>`;
    return `<c r="${ref}" t="inlineStr"${s}><is><t xml:space="preserve">${xml(v)}</t></is></c>`;
  };
  const rows: string[] = [];
  rows.push(`<row r="1">${table.headers.map((h, i) => cell(`${columnName(i)}1`, h, 1)).join("")}</row>`);
  table.rows.forEach((row, r) => {
    const n = r + 2;
    rows.push(`<row r="${n}">${row.map((c, i) => cell(`${columnName(i)}${n}`, plain(c))).join("")}</row>`);
  });
  const sheet =
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
    `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
    `<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>` +
    `<sheetData>${rows.join("")}</sheetData></worksheet>`;
  const files: Record<string, Uint8Array> = {
    "[Content_Types].xml": strToU8(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
        `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
        `<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
        `<Default Extension="xml" ContentType="application/xml"/>` +
        `<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
        `<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>` +
        `<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>` +
        `</Types>`,
    ),
    "_rels/.rels": strToU8(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
        `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
        `<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>` +
        `</Relationships>`,
    ),
    "xl/workbook.xml": strToU8(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
        `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
        `<sheets><sheet name="${xml(sheetName)}" sheetId="1" r:id="rId1"/></sheets></workbook>`,
    ),
    "xl/_rels/workbook.xml.rels": strToU8(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
        `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
        `<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>` +
        `<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>` +
        `</Relationships>`,
    ),
    "xl/styles.xml": strToU8(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
        `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
        `<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>` +
        `<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
        `<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
        `<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
        `<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>` +
        `<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>` +
        `</styleSheet>`,
    ),
    "xl/worksheets/sheet1.xml": strToU8(sheet),
  };
  return zipSync(files, { level: 6 });
}

/** Let the browser save `data` as `filename`. */
export function download(filename: string, data: BlobPart, type: string): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
  // Revoking at once can cancel the download in some browsers.
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
