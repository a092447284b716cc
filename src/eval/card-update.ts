/**
 * Adding the quality check's figures to an existing bundle's README.md (the same "Quality
 * check" table model-card.ts writes when it is given `quality`), and keeping the bundle's
 * manifest.sha256 (sha256sum format) in step with the edited file.
 */

const HEADING = '## Quality check';

/** The section as model-card.ts renders it: numbers with 6 significant digits. */
export function qualitySection(figures: Record<string, number | string>): string {
  const lines = [HEADING, '', '| metric | value |', '|---|---|'];
  for (const [k, v] of Object.entries(figures)) lines.push(`| ${k} | ${typeof v === 'number' ? v.toPrecision(6) : v} |`);
  lines.push('');
  return lines.join('\n');
}

/**
 * README text with the section replaced (a re-run updates, never duplicates) or, the first
 * time, inserted before "## Reproduce" — where model-card.ts puts it — else appended.
 */
export function updateCardQuality(readme: string, figures: Record<string, number | string>): string {
  const section = qualitySection(figures);
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.trim() === HEADING);
  if (start >= 0) {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = lines.length;
    const tail = lines.slice(end);
    return [...lines.slice(0, start), ...section.split('\n'), ...tail].join('\n').replace(/\n*$/, '\n');
  }
  const repro = lines.findIndex((l) => l.trim() === '## Reproduce');
  if (repro >= 0) return [...lines.slice(0, repro), ...section.split('\n'), ...lines.slice(repro)].join('\n');
  const body = readme.replace(/\n*$/, '');
  return `${body}${body ? '\n\n' : ''}${section}`;
}

/** manifest.sha256 text with `path`'s line set to `sha256hex` (added when missing; order kept). */
export function updateManifestLine(manifest: string, path: string, sha256hex: string): string {
  const line = `${sha256hex}  ${path}`;
  const lines = manifest.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  const i = lines.findIndex((l) => /^[0-9a-fA-F]{64} [ *]/.test(l) && l.slice(66) === path);
  if (i >= 0) {
    lines[i] = line;
  } else {
    // The sinks write the manifest sorted by path; keep it so.
    lines.push(line);
    lines.sort((x, y) => (x.slice(66) < y.slice(66) ? -1 : x.slice(66) > y.slice(66) ? 1 : 0));
  }
  return lines.join('\n') + '\n';
}
