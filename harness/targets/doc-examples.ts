/**
 * The worked examples of docs/transforms.md as target documents: each `<!-- example: NAME -->`
 * JSON block, with `transform.body` from the `<!-- example: NAME.body -->` JSONata block. Tests
 * build their targets from the doc, so the doc is what is tested.
 */
export function docExample(markdown: string, name: string): Record<string, unknown> & { transform: Record<string, unknown> } {
  const block = (label: string) => {
    const at = markdown.indexOf(`<!-- example: ${label} -->`);
    if (at < 0) throw new Error(`docs/transforms.md has no example ${label}`);
    const m = /```[a-z]*\n([\s\S]*?)\n```/.exec(markdown.slice(at));
    if (!m?.[1]) throw new Error(`example ${label} has no code block`);
    return m[1];
  };
  const doc = JSON.parse(block(name)) as Record<string, unknown> & { transform: Record<string, unknown> };
  return { ...doc, transform: { ...doc.transform, body: block(`${name}.body`) } };
}
