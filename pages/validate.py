"""Validate page (planned: issue #4)."""

from ui.widgets import planned_page

planned_page(
    "Validate",
    "coding",
    "Agreement between model codes and human coders (accuracy, F1, Cohen's kappa, Krippendorff's alpha, "
    "with bootstrap intervals) and a form to hand-code a stratified sample. The sample data already carries "
    "two human coders' codes (`human_code`, `human_code_2`) for this.",
    "issue #4",
)
