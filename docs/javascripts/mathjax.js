window.MathJax = {
  // arithmatex wraps the site's math in \(...\) and \[...\]; the notebooks' Markdown cells keep $...$ and $$...$$.
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  // Only math is typeset: arithmatex's spans, and the notebooks' Markdown cells (their math sits in <p>s
  // inside the cell, so nothing may be ignored by default; code is skipped by tag, and
  // tools/check_docs.py fails on a `$` left in any other page's text).
  options: { ignoreHtmlClass: "tex2jax_ignore|mathjax_ignore", processHtmlClass: "arithmatex|jp-RenderedMarkdown" },
};
document$.subscribe(() => { MathJax.typesetPromise(); });
