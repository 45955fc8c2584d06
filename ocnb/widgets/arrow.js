// A small reader for the Arrow IPC stream format: enough for the tables ocnb's widgets send
// (utf8, signed ints, floats, booleans, nulls, and lists of those; one or more record batches).
// It reads the flatbuffer metadata by hand, so the widgets need no JavaScript dependency.

const TYPE = { Null: 1, Int: 2, FloatingPoint: 3, Utf8: 5, Bool: 6, List: 12 };

class Table {
  constructor(view, position) {
    this.view = view;
    this.position = position;
    this.vtable = position - view.getInt32(position, true);
    this.vtableSize = view.getUint16(this.vtable, true);
  }
  offset(field) {
    const slot = 4 + 2 * field;
    return slot < this.vtableSize ? this.view.getUint16(this.vtable + slot, true) : 0;
  }
  scalar(field, kind, fallback = 0) {
    const at = this.offset(field);
    if (!at) return fallback;
    const p = this.position + at;
    switch (kind) {
      case "u8": return this.view.getUint8(p);
      case "i16": return this.view.getInt16(p, true);
      case "i32": return this.view.getInt32(p, true);
      case "i64": return Number(this.view.getBigInt64(p, true));
      case "bool": return this.view.getUint8(p) !== 0;
    }
  }
  target(field) {
    const at = this.offset(field);
    if (!at) return null;
    const p = this.position + at;
    return p + this.view.getUint32(p, true);
  }
  table(field) {
    const p = this.target(field);
    return p === null ? null : new Table(this.view, p);
  }
  string(field) {
    const p = this.target(field);
    if (p === null) return null;
    const length = this.view.getUint32(p, true);
    return new TextDecoder().decode(new Uint8Array(this.view.buffer, this.view.byteOffset + p + 4, length));
  }
  tables(field) {
    const p = this.target(field);
    if (p === null) return [];
    const count = this.view.getUint32(p, true);
    return Array.from({ length: count }, (_, i) => {
      const slot = p + 4 + 4 * i;
      return new Table(this.view, slot + this.view.getUint32(slot, true));
    });
  }
  structs(field, size) {
    const p = this.target(field);
    if (p === null) return [];
    const count = this.view.getUint32(p, true);
    return Array.from({ length: count }, (_, i) => p + 4 + size * i);
  }
}

function readField(field) {
  const typeId = field.scalar(2, "u8");
  const type = field.table(3);
  return {
    name: field.string(0),
    typeId,
    bitWidth: typeId === TYPE.Int ? type.scalar(0, "i32") : 0,
    precision: typeId === TYPE.FloatingPoint ? type.scalar(0, "i16") : 0,
    children: field.tables(5).map(readField),
  };
}

function readColumn(field, batch) {
  const node = batch.nodes[batch.node++];
  const validity = batch.buffers[batch.buffer++];
  const valid = (i) => node.nulls === 0 || validity.length === 0 || (batch.byte(validity, i >> 3) >> (i & 7)) & 1;
  const values = [];
  if (field.typeId === TYPE.Null) return new Array(node.length).fill(null);
  if (field.typeId === TYPE.Utf8) {
    const offsets = batch.buffers[batch.buffer++], data = batch.buffers[batch.buffer++];
    const decoder = new TextDecoder();
    for (let i = 0; i < node.length; i++) {
      if (!valid(i)) { values.push(null); continue; }
      const start = batch.i32(offsets, i), end = batch.i32(offsets, i + 1);
      values.push(decoder.decode(batch.bytes(data, start, end - start)));
    }
    return values;
  }
  if (field.typeId === TYPE.List) {
    const offsets = batch.buffers[batch.buffer++];
    const child = readColumn(field.children[0], batch);
    for (let i = 0; i < node.length; i++) {
      values.push(valid(i) ? child.slice(batch.i32(offsets, i), batch.i32(offsets, i + 1)) : null);
    }
    return values;
  }
  const data = batch.buffers[batch.buffer++];
  for (let i = 0; i < node.length; i++) {
    if (!valid(i)) { values.push(null); continue; }
    if (field.typeId === TYPE.Bool) values.push(((batch.byte(data, i >> 3) >> (i & 7)) & 1) === 1);
    else if (field.typeId === TYPE.FloatingPoint) values.push(field.precision === 2 ? batch.f64(data, i) : batch.f32(data, i));
    else if (field.typeId === TYPE.Int) values.push(batch.int(data, i, field.bitWidth));
    else throw new Error(`unsupported Arrow type ${field.typeId} in column ${field.name}`);
  }
  return values;
}

// Decode an Arrow IPC stream into {columns, rows}: column names and one object per row.
export function decodeArrow(source) {
  const bytes = source instanceof Uint8Array ? source
    : source instanceof DataView ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
    : new Uint8Array(source);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fields = [];
  const rows = [];
  let p = 0;
  while (p + 8 <= view.byteLength) {
    if (view.getInt32(p, true) === -1) p += 4;  // continuation marker
    const length = view.getInt32(p, true);
    p += 4;
    if (length === 0) break;  // end of stream
    const message = new Table(view, p + view.getUint32(p, true));
    const headerType = message.scalar(1, "u8");
    const header = message.table(2);
    const bodyLength = message.scalar(3, "i64");
    const body = p + length;
    if (headerType === 1) {
      fields = header.tables(1).map(readField);
    } else if (headerType === 3) {
      const count = header.scalar(0, "i64");
      const batch = {
        node: 0, buffer: 0,
        nodes: header.structs(1, 16).map((s) => ({ length: Number(view.getBigInt64(s, true)), nulls: Number(view.getBigInt64(s + 8, true)) })),
        buffers: header.structs(2, 16).map((s) => ({ offset: body + Number(view.getBigInt64(s, true)), length: Number(view.getBigInt64(s + 8, true)) })),
        byte: (b, i) => view.getUint8(b.offset + i),
        i32: (b, i) => view.getInt32(b.offset + 4 * i, true),
        f32: (b, i) => view.getFloat32(b.offset + 4 * i, true),
        f64: (b, i) => view.getFloat64(b.offset + 8 * i, true),
        int: (b, i, bits) => bits === 64 ? Number(view.getBigInt64(b.offset + 8 * i, true))
          : bits === 32 ? view.getInt32(b.offset + 4 * i, true)
          : bits === 16 ? view.getInt16(b.offset + 2 * i, true) : view.getInt8(b.offset + i),
        bytes: (b, start, n) => new Uint8Array(view.buffer, view.byteOffset + b.offset + start, n),
      };
      const columns = fields.map((field) => readColumn(field, batch));
      for (let i = 0; i < count; i++) {
        const row = {};
        fields.forEach((field, c) => { row[field.name] = columns[c][i]; });
        rows.push(row);
      }
    }
    p = body + bodyLength;
  }
  return { columns: fields.map((f) => f.name), rows };
}
