// Markdown to HTML for the run page (the stored report, the metrics-against-the-base
// section). markdown-it with raw HTML off: every `<` in the text comes out as `&lt;`, and its
// link validator refuses javascript:/vbscript:/file:/data: (except images) URLs, so text
// from users (step names, params, messages, which the Markdown already escapes) cannot
// become markup or a script on the page.
import MarkdownIt from 'markdown-it';
import { neutraliseBidi } from '../usertext.js';

const md = new MarkdownIt({ html: false, linkify: false, typographer: false });

// Links open outside the page and tell the target nothing about it.
const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx]!.attrSet('rel', 'noopener noreferrer nofollow');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** GitHub-flavoured Markdown (tables, fences) as an HTML fragment; raw HTML in the text is shown as text. */
export function markdownToHtml(text: string): string {
  return md.render(neutraliseBidi(text));
}
