"""Image-quality metrics for pix2pix outputs: L1, PSNR and SSIM always; FID and LPIPS when their
pretrained backbones are available.

L1, PSNR and SSIM are computed here in plain torch, batched, per image. SSIM follows Wang et al.,
"Image quality assessment: from error visibility to structural similarity" (IEEE TIP 2004) with the
usual settings (11-tap Gaussian window, sigma 1.5, K1 0.01, K2 0.03, population covariances, the
mean over the window positions that fit inside the image, then over channels); this equals
`skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, channel_axis=-1)`, which the tests check.

FID (Heusel et al. 2017) and LPIPS (Zhang et al. 2018) come from torchmetrics. Both need weights
that torch downloads on first use into the torch hub cache (`torch.hub.get_dir()/checkpoints`):
FID the Inception v3 weights published by torch-fidelity, LPIPS an ImageNet AlexNet from
torchvision (LPIPS's own linear layers ship inside torchmetrics). Offline and without those files
the metrics are skipped with the reason, never a crash: `make_fid`/`make_lpips` return a scorer or
a `Skipped` that says why. A download gets a short timeout so an evaluation never hangs on the
network; dropping the file into the cache by hand enables the metric offline.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..util.download import download
from ..util.errors import Skipped

# --------------------------------------------------------------------------------------------------
# Pixel metrics. Inputs are (N, C, H, W) tensors.


def l1_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image, in the units of its inputs."""
    return (a - b).abs().flatten(1).mean(1)


def psnr_per_image(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """10 log10(range^2 / MSE) per image, in dB; +inf for identical images."""
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse)).float()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A normalised 1-D Gaussian of `size` taps (the SSIM paper's window)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    window = torch.exp(-(x**2) / (2 * sigma**2))
    return window / window.sum()


def ssim_per_image(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM per image (over valid window positions, then channels)."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim_per_image needs two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    n, c, h, w = a.shape
    if min(h, w) < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size}x{window_size}, got {h}x{w}")
    g = gaussian_window(window_size, sigma).to(device=a.device, dtype=torch.float32)
    # Separable Gaussian as two depthwise convolutions over the 5 stacked statistics of each channel.
    kx = g.view(1, 1, 1, window_size).repeat(5 * c, 1, 1, 1)
    ky = g.view(1, 1, window_size, 1).repeat(5 * c, 1, 1, 1)
    a, b = a.float(), b.float()
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)
    blurred = F.conv2d(F.conv2d(stack, kx, groups=5 * c), ky, groups=5 * c)
    mu_a, mu_b, aa, bb, ab = blurred.split(c, dim=1)
    var_a = aa - mu_a * mu_a
    var_b = bb - mu_b * mu_b
    cov = ab - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(2).mean(2).mean(1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 in [0, 255] (what FID's Inception expects, and what a PNG holds).
    uint8 input is returned as it is."""
    if images.dtype == torch.uint8:
        return images
    return images.float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def pixel_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image L1 (on the networks' [-1, 1] scale, the quantity the training loss's L1 term
    measures), PSNR in dB and SSIM (on [0, 1] images), after 8-bit quantisation of both.

    Takes [-1, 1] floats or, cheaper when the caller needs 8-bit pictures anyway, uint8 tensors.
    """
    fake_u = to_uint8(fake).float().div_(255)
    real_u = to_uint8(real).float().div_(255)
    return {
        "l1": l1_per_image(fake_u, real_u) * 2,  # [0, 1] differences -> [-1, 1] units
        "psnr": psnr_per_image(fake_u, real_u),
        "ssim": ssim_per_image(fake_u, real_u),
    }


# --------------------------------------------------------------------------------------------------
# Backbone weights for FID and LPIPS: where they live, and fetching them without hanging.


class BackboneUnavailable(RuntimeError):
    """Pretrained weights a metric needs are neither cached nor downloadable."""


Downloader = Callable[[str, Path, float], None]


def hub_checkpoint_path(url: str) -> Path:
    """Where `torch.hub.load_state_dict_from_url(url)` looks before downloading (honours TORCH_HOME)."""
    filename = os.path.basename(urllib.parse.urlparse(url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def download_file(url: str, destination: Path, timeout: float) -> None:
    """Fetch `url` into `destination` (atomically: a partial download never sits in the cache).

    `timeout` bounds every socket operation, so a dead network fails fast instead of hanging. As
    torch.hub does, a hex run at the end of the file name ('...-7be5be79.pth') is taken as the
    start of the file's SHA-256 and checked; a mismatch is an error and leaves nothing behind.
    """
    match = re.search(r"-([a-f0-9]{8,})\.", destination.name)
    download(url, destination, timeout=timeout, expected_sha256=match.group(1) if match else None)


def ensure_backbone(
    url: str,
    what: str,
    *,
    download: bool = True,
    downloader: Downloader | None = None,
    timeout: float = 20.0,
) -> Path:
    """The cached weights file for `url`, downloading it first if allowed; BackboneUnavailable
    (with the path to place the file at by hand) otherwise."""
    path = hub_checkpoint_path(url)
    if path.is_file() and path.stat().st_size > 0:
        return path
    if not download:
        raise BackboneUnavailable(f"{what} weights are not in {path} and downloads are off")
    try:
        (downloader or download_file)(url, path, timeout)
    except (OSError, ValueError) as error:  # URLError, socket timeouts and HTTP errors are OSErrors
        raise BackboneUnavailable(
            f"{what} weights are not cached and could not be downloaded from {url} ({error}); "
            f"to enable it offline, place the file at {path}"
        ) from error
    if not path.is_file():
        raise BackboneUnavailable(f"{what} weights download from {url} left no file at {path}")
    return path


def inception_url() -> str:
    """The Inception v3 weights torch-fidelity (and so torchmetrics' FID) loads."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3  # lazy: optional dependency

    return URL_INCEPTION_V3


def alexnet_url() -> str:
    """The torchvision ImageNet AlexNet that torchmetrics' LPIPS (net 'alex') uses as backbone."""
    from torchvision.models import AlexNet_Weights  # lazy: pulls in torch._dynamo (seconds); only optional LPIPS needs it

    return AlexNet_Weights.DEFAULT.url


# --------------------------------------------------------------------------------------------------
# FID: real statistics are kept across generators, so several weights share one pass over the set.


class FidScorer:
    """Fréchet distance between Inception features of real and generated photos over a whole set.

    `add_real` once per dataset, then for each generator `add_fake` batches and `compute()`;
    `reset_fake()` before the next generator keeps the real statistics.
    """

    def __init__(self, feature: Union[int, nn.Module] = 2048) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance  # lazy: optional dependency

        # uint8 input: the default Inception rescales it itself; a custom extractor receives it as is.
        self.metric = FrechetInceptionDistance(feature=feature, reset_real_features=False, normalize=False)
        self.n_real = 0
        self.n_fake = 0
        self.description = "Inception v3 pool features (torch-fidelity weights)" if isinstance(feature, int) else (
            f"custom feature extractor {type(feature).__name__}"
        )

    def add_real(self, images: torch.Tensor) -> None:
        """Photos as [-1, 1] floats or uint8."""
        self.metric.update(to_uint8(images).cpu(), real=True)
        self.n_real += len(images)

    def add_fake(self, images: torch.Tensor) -> None:
        self.metric.update(to_uint8(images).cpu(), real=False)
        self.n_fake += len(images)

    def compute(self) -> float:
        if self.n_real < 2 or self.n_fake < 2:
            raise ValueError(f"FID needs at least 2 real and 2 generated images, got {self.n_real} and {self.n_fake}")
        return float(self.metric.compute())

    def reset_fake(self) -> None:
        self.metric.reset()  # reset_real_features=False keeps the real statistics
        self.n_fake = 0


class LpipsScorer:
    """Per-image LPIPS (AlexNet, the LPIPS paper's default) on [-1, 1] images; lower is closer."""

    def __init__(self, net_type: str = "alex") -> None:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity  # lazy: optional dependency

        self.metric = LearnedPerceptualImagePatchSimilarity(net_type=net_type, reduction="none", normalize=False)
        self.metric.eval()

    @torch.inference_mode()
    def __call__(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Images as [-1, 1] floats or uint8; the 8-bit pictures are scored, as for the pixel metrics."""
        fake_q = to_uint8(fake).cpu().float().div_(127.5).sub_(1)
        real_q = to_uint8(real).cpu().float().div_(127.5).sub_(1)
        return self.metric.net(fake_q, real_q).flatten()


def _torchmetrics_missing(metric: str) -> Skipped | None:
    try:
        import torchmetrics  # noqa: F401  # lazy: optional dependency
    except ImportError:
        return Skipped(metric, "torchmetrics is not installed (pip install 'edges2shoes[metrics]')")
    return None


def make_fid(
    *,
    feature: Union[int, nn.Module] = 2048,
    download: bool = True,
    downloader: Downloader | None = None,
    timeout: float = 20.0,
) -> FidScorer | Skipped:
    """A FID scorer, or `Skipped` with the reason (no torchmetrics / torch-fidelity, weights not
    cached and not downloadable, weights unreadable)."""
    missing = _torchmetrics_missing("fid")
    if missing:
        return missing
    if isinstance(feature, int):
        try:
            url = inception_url()
        except ImportError:
            return Skipped("fid", "torch-fidelity is not installed (pip install 'edges2shoes[metrics]')")
        try:
            ensure_backbone(url, "FID Inception v3", download=download, downloader=downloader, timeout=timeout)
        except BackboneUnavailable as error:
            return Skipped("fid", str(error))
    try:
        return FidScorer(feature)
    except Exception as error:  # a corrupt cached file, an incompatible torchmetrics: skip, never crash
        return Skipped("fid", f"could not build the FID metric: {type(error).__name__}: {error}")


def make_lpips(
    *,
    download: bool = True,
    downloader: Downloader | None = None,
    timeout: float = 20.0,
) -> LpipsScorer | Skipped:
    """An LPIPS scorer, or `Skipped` with the reason."""
    missing = _torchmetrics_missing("lpips")
    if missing:
        return missing
    try:
        ensure_backbone(alexnet_url(), "LPIPS AlexNet", download=download, downloader=downloader, timeout=timeout)
    except BackboneUnavailable as error:
        return Skipped("lpips", str(error))
    try:
        return LpipsScorer("alex")
    except Exception as error:
        return Skipped("lpips", f"could not build the LPIPS metric: {type(error).__name__}: {error}")


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: identical images give PSNR = inf, written as null."""
    return value if math.isfinite(value) else None
