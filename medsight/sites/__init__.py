"""Site profiles from files: a manifest's normal rows, a folder, a zip or uploaded films -> feature maps through the
frozen backbone -> `medsight.vision.site_fit.fit_profile`. The profile format and how detectors use it live in
`medsight.vision.sites` (the scoring path needs nothing from here). Nothing in `medsight` imports this package: the
CLI reaches it through `medsight.sites.commands`, the app through its Site profile page."""

from medsight.sites.fitting import fit_from_images, fit_from_manifest, fit_from_uploads, images_in_folder, read_zip

__all__ = ["fit_from_images", "fit_from_manifest", "fit_from_uploads", "images_in_folder", "read_zip"]
