/* Stand-in for MathJax: the site is built to work offline, so no script is loaded from a CDN.
   TeX in the notebooks stays on the page as written. */
