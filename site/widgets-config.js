// The course site serves the widget front ends itself: site/build.py copies them from npm into
// _static/vendor, next to this file, and the page loads this file right after require.js.
(function () {
  const here = document.currentScript.src;
  // anywidget's front end (the explorer's picture) from here, not from a CDN.
  const paths = { anywidget: new URL("anywidget/index", here).href };
  // embed-amd.js defines these modules itself; each finds its icon fonts next to where its module
  // would be (webpack's public path), so point them at html-manager/, where the fonts are.
  for (const name of ["html-manager", "base", "controls", "base7", "controls7", "output"]) {
    paths[`@jupyter-widgets/${name}`] = new URL(`html-manager/${name}`, here).href;
  }
  paths["@jupyter-widgets/html-manager/dist"] = new URL("html-manager", here).href; // its libembed-amd
  window.requirejs.config({ paths });
  // embed-amd.js reads its CDN from a script tag's data-jupyter-widgets-cdn: this one, on this
  // site, so that a module missing here fails here rather than being fetched from elsewhere.
  document.currentScript.setAttribute("data-jupyter-widgets-cdn", new URL("npm/", here).href);
  // ipywidgets typesets a widget's LaTeX with MathJax 2's MathJax.Hub.Queue; Sphinx loads
  // MathJax 3, which has no Hub. Give it one that typesets with MathJax 3.
  document.addEventListener("DOMContentLoaded", () => {
    const mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup) return;
    mathjax.Hub = {
      Queue(...commands) {
        for (const [name, , element] of commands) {
          if (name === "Typeset" && element) mathjax.startup.promise.then(() => mathjax.typesetPromise([element]));
        }
      },
    };
  });
})();
