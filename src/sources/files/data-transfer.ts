/**
 * Files from a drag-and-drop, folders included: DataTransfer items are walked through the
 * FileSystemEntry API (webkitGetAsEntry), since `dt.files` alone lists folders as empty files.
 */
import type { PathedFile } from './files-source';

interface EntryLike {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  fullPath: string;
}
interface FileEntryLike extends EntryLike {
  file(ok: (f: File) => void, err?: (e: unknown) => void): void;
}
interface DirEntryLike extends EntryLike {
  createReader(): { readEntries(ok: (es: EntryLike[]) => void, err?: (e: unknown) => void): void };
}

async function readAllEntries(dir: DirEntryLike): Promise<EntryLike[]> {
  const reader = dir.createReader();
  const out: EntryLike[] = [];
  // readEntries returns batches (100 in Chrome) until an empty one.
  for (;;) {
    const batch = await new Promise<EntryLike[]>((ok, err) => reader.readEntries(ok, err));
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

async function walkEntry(entry: EntryLike, prefix: string, out: PathedFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((ok, err) => (entry as FileEntryLike).file(ok, err));
    out.push({ path, file });
  } else if (entry.isDirectory) {
    for (const child of await readAllEntries(entry as DirEntryLike)) await walkEntry(child, path, out);
  }
}

export async function filesFromDataTransfer(dt: DataTransfer): Promise<PathedFile[]> {
  const out: PathedFile[] = [];
  const items = dt.items ? Array.from(dt.items).filter((it) => it.kind === 'file') : [];
  // Entries and files must be taken synchronously: the DataTransfer is emptied after the event handler yields.
  const entries = items.map((it) => (it.webkitGetAsEntry ? (it.webkitGetAsEntry() as unknown as EntryLike | null) : null));
  const asFiles = items.map((it) => (typeof it.getAsFile === 'function' ? it.getAsFile() : null));
  if (entries.length > 0 && entries.every((e) => e !== null)) {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const plain = asFiles[i];
      if (e.isFile && plain) {
        // WebKit gives in-memory files (dropped from a page, or made by script) an entry whose
        // file() fails with NotFoundError; the item's own File has the bytes.
        try {
          await walkEntry(e, '', out);
        } catch {
          out.push({ path: plain.name, file: plain });
        }
      } else await walkEntry(e, '', out);
    }
    return out;
  }
  for (const f of Array.from(dt.files ?? [])) out.push({ path: f.webkitRelativePath || f.name, file: f });
  return out;
}
