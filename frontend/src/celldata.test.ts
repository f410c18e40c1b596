// The binary answers, built here byte by byte as docs/dev/cell-data.md and
// docs/dev/table-protocol.md describe them (and as the server writes them).
import { describe, expect, it } from "vitest";

import { decodeCellData, readFrame } from "./celldata";
import { decodeBinary } from "./table";

const align8 = (n: number): number => n + ((8 - (n % 8)) % 8);

/** `magic`, the JSON's length, the JSON padded with `pad` to a multiple of 8, then `body`. */
function frame(magic: string, header: unknown, body: Uint8Array, pad: " " | "\0"): ArrayBuffer {
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padding = align8(8 + json.length) - 8 - json.length;
  const length = pad === " " ? json.length + padding : json.length;
  if (pad === " ") json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(padding));
  const out = new Uint8Array(align8(8 + json.length) + body.length);
  out.set(new TextEncoder().encode(magic), 0);
  new DataView(out.buffer).setUint32(4, length, true);
  out.set(json, 8);
  out.set(body, align8(8 + json.length));
  return out.buffer;
}

const bytes = (array: Float64Array | Float32Array): Uint8Array => new Uint8Array(array.buffer);

describe("readFrame", () => {
  it("reads the JSON header and where the 8-byte aligned body starts", () => {
    const buffer = frame("RTXX", { a: 1 }, new Uint8Array(8), "\0");
    const read = readFrame(buffer, "RTXX", "test");
    expect(read.header).toEqual({ a: 1 });
    expect(read.body % 8).toBe(0);
    expect(read.body).toBe(16);
  });

  it("refuses another magic or a truncated answer, naming the answer", () => {
    const buffer = frame("RTB1", {}, new Uint8Array(0), "\0");
    expect(() => readFrame(buffer, "RTCD", "cell data")).toThrow("the server's cell data answer is not in the expected binary form");
    expect(() => readFrame(new ArrayBuffer(3), "RTCD", "cell data")).toThrow(/not in the expected binary form/);
  });
});

describe("decodeCellData (RTCD)", () => {
  it("gives each array as a view of its declared bytes, float32 and float64 alike", () => {
    const z = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const x = Float64Array.from([10, 20, 30]);
    // Offsets count from the start of the answer; the header's length is fixed first.
    const probe = { kind: "image", arrays: [{ name: "z", dtype: "float32", shape: [2, 3], offset: 1000, nbytes: 24 }, { name: "x", dtype: "float64", shape: [3], offset: 1000, nbytes: 24 }] };
    const start = align8(8 + JSON.stringify(probe).length);
    const header = {
      kind: "image",
      arrays: [
        { name: "z", dtype: "float32", shape: [2, 3], offset: start, nbytes: z.byteLength },
        { name: "x", dtype: "float64", shape: [3], offset: start + 24, nbytes: x.byteLength },
      ],
    };
    const body = new Uint8Array(48);
    body.set(bytes(z), 0);
    body.set(bytes(x), 24);
    const buffer = frame("RTCD", header, body, " ");
    const answer = decodeCellData(buffer);
    expect(answer.header.kind).toBe("image");
    expect(answer.bytes).toBe(buffer.byteLength);
    expect(answer.arrays.z).toBeInstanceOf(Float32Array);
    expect(Array.from(answer.arrays.z ?? [])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(answer.arrays.x).toBeInstanceOf(Float64Array);
    expect(Array.from(answer.arrays.x ?? [])).toEqual([10, 20, 30]);
    expect(answer.arrays.z?.buffer).toBe(buffer);
  });

  it("sizes an array by its bytes, whatever its shape says", () => {
    const y = Float64Array.from([1, 2]);
    const header = { kind: "line", arrays: [{ name: "y", dtype: "float64", shape: [], offset: 0, nbytes: 16 }] };
    const start = align8(8 + JSON.stringify(header).length);
    header.arrays[0] = { ...header.arrays[0]!, offset: start };
    const answer = decodeCellData(frame("RTCD", header, bytes(y), " "));
    expect(Array.from(answer.arrays.y ?? [])).toEqual([1, 2]);
  });

  it("refuses an answer that is not cell data", () => {
    expect(() => decodeCellData(frame("RTB1", { arrays: [] }, new Uint8Array(0), " "))).toThrow(/cell data answer/);
  });
});

describe("decodeBinary (the table's RTB1)", () => {
  it("puts each numeric column's block and each trendline's points in place", () => {
    const snapshot = {
      proposal: 1234,
      seq: 5,
      bus: "b",
      runs: [1, 2, 3],
      start_time: [null, null, null],
      added_at: [null, null, null],
      comment: [null, "x", null],
      variables: [],
      columns: {
        energy: { f64: 1, cells: {} },
        text: { values: ["a", null, "c"] },
        counts: { f64: 0, pts: 2, cells: { "1": { kind: "trendline", pts: [1, 2] } } },
      },
    };
    const blocks = new Float64Array([7, 8, 9, 0.5, Number.NaN, 1.5]);
    const points = new Float32Array([0, 0, 0, 4, 5, 0]);
    const body = new Uint8Array(blocks.byteLength + points.byteLength);
    body.set(bytes(blocks), 0);
    body.set(bytes(points), blocks.byteLength);
    const decoded = decodeBinary(frame("RTB1", snapshot, body, "\0"));
    expect(Array.from(decoded.columns.energy?.values ?? [])).toEqual([0.5, Number.NaN, 1.5]);
    expect(Array.from(decoded.columns.counts?.values ?? [])).toEqual([7, 8, 9]);
    expect(decoded.columns.text?.values).toEqual(["a", null, "c"]);
    const trend = decoded.columns.counts?.cells?.["1"];
    expect(Array.from(trend?.points ?? [])).toEqual([4, 5]);
    expect(trend).not.toHaveProperty("pts");
    expect(decoded.columns.counts).not.toHaveProperty("f64");
    expect(decoded.comment).toEqual([null, "x", null]);
  });

  it("refuses an answer that is not the table's", () => {
    expect(() => decodeBinary(frame("RTCD", {}, new Uint8Array(0), "\0"))).toThrow("the server's table answer is not in the expected binary form");
  });
});
