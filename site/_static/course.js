// The "run this notebook" box (_ext/course_site.py): the JupyterHub field opens the notebook on the
// reader's hub with nbgitpuller (the hub must have it, as most university hubs do). The address
// typed is remembered for the other pages.
document.addEventListener("DOMContentLoaded", () => {
  const key = "course-jupyterhub-url";
  for (const box of document.querySelectorAll(".course-launch")) {
    const form = box.querySelector(".course-hub-form");
    const field = box.querySelector(".course-hub-url");
    try { field.value = window.localStorage.getItem(key) || ""; } catch (err) { /* storage off */ }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const hub = field.value.trim().replace(/\/+$/, "");
      try { window.localStorage.setItem(key, hub); } catch (err) { /* storage off */ }
      const { repo, branch, repoName, path } = box.dataset;
      const query = new URLSearchParams({ repo, branch, urlpath: `lab/tree/${repoName}/${path}` });
      window.open(`${hub}/hub/user-redirect/git-pull?${query}`, "_blank", "noopener");
    });
  }
});
