window.MathJax = {
  // arithmatex wraps the site's math in \(...\) and \[...\]; the notebooks' Markdown cells keep $...$ and $$...$$.
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex|jp-RenderedMarkdown" },
};
document$.subscribe(() => { MathJax.typesetPromise(); });
