// The markdown of messages: markdown-it (vendored, see vendor/README.md)
// with raw HTML off, so whatever a person types that looks like HTML stays
// text. Only a small, safe subset is on: bold, italic, strikethrough,
// inline code, code blocks, lists, quotes and links (which open in a new
// tab without telling the site where they came from). Images, tables,
// headings and rules are switched off as rules, not filtered afterwards.
// @username becomes a mention, found by a core rule over the parsed text
// (never by a regular expression over HTML), so code and links keep theirs.

import markdownit from "./vendor/markdown-it.esm.min.mjs";

// The server's username alphabet: 3–32 letters, digits, _ . or -.
const MENTION = /(^|[^\w@.\-/])@([A-Za-z0-9_.-]{3,32})/g;

const md = markdownit({ html: false, linkify: true, breaks: true, typographer: false });
md.disable(["image", "table", "heading", "lheading", "hr"]);
// markdown-it's own validateLink refuses javascript:, vbscript:, file: and
// most data: links; it is kept as it is.

const defaultLinkOpen = md.renderer.rules.link_open
  || ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet("target", "_blank");
  tokens[idx].attrSet("rel", "noopener noreferrer");
  return defaultLinkOpen(tokens, idx, options, env, self);
};

md.renderer.rules.mention = (tokens, idx, _options, env) => {
  const name = tokens[idx].meta.username;
  const me = env?.me && name.toLowerCase() === env.me.toLowerCase();
  return `<span class="mention${me ? " me" : ""}">@${md.utils.escapeHtml(name)}</span>`;
};

// Splits the text tokens of each inline run at its mentions. Text inside a
// link stays as it is (an address like bob@example.org is a link already);
// code spans and code blocks are not text tokens, so they keep their @s.
md.core.ruler.push("mentions", (state) => {
  for (const block of state.tokens) {
    if (block.type !== "inline" || !block.children) continue;
    const out = [];
    let inLink = 0;
    for (const token of block.children) {
      if (token.type === "link_open") inLink += 1;
      if (token.type === "link_close") inLink -= 1;
      if (token.type !== "text" || inLink > 0 || !token.content.includes("@")) {
        out.push(token);
        continue;
      }
      let last = 0;
      const text = token.content;
      for (const match of text.matchAll(MENTION)) {
        const start = match.index + match[1].length;
        // A trailing dot ends the sentence, not the name.
        const username = match[2].replace(/[.-]+$/, "");
        if (username.length < 3) continue;
        if (start > last) out.push(textToken(state, text.slice(last, start)));
        const mention = new state.Token("mention", "", 0);
        mention.meta = { username };
        out.push(mention);
        last = start + 1 + username.length;
      }
      if (last === 0) out.push(token);
      else if (last < text.length) out.push(textToken(state, text.slice(last)));
    }
    block.children = out;
  }
});

function textToken(state, content) {
  const token = new state.Token("text", "", 0);
  token.content = content;
  return token;
}

// The message as HTML (escaped by markdown-it: raw HTML is off). me is the
// viewer's username, whose mentions are marked.
export function markdownHtml(text, me = "") {
  // Trimmed: a newline after the last block would be text in the body.
  return md.render(text, { me }).trim();
}

// The message as DOM nodes, parsed inertly (a <template> runs nothing).
export function renderMarkdown(text, me = "") {
  const template = document.createElement("template");
  template.innerHTML = markdownHtml(text, me);
  return template.content;
}

// The usernames a message mentions (lower case), as the renderer sees them.
export function mentionedUsernames(text) {
  const names = new Set();
  if (!text.includes("@")) return names;
  for (const block of md.parse(text, {})) {
    for (const token of block.children || []) {
      if (token.type === "mention") names.add(token.meta.username.toLowerCase());
    }
  }
  return names;
}
