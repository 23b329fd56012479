// Filled in by the next commits.
export async function render(ctx) {
  ctx.view.textContent = "This page is being built.";
}
