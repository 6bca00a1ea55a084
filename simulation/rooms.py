"""Shoebox rooms: geometry, wall reflection, air and temperature.

A `Room` holds everything about the enclosure and nothing about what is in it,
so one room can be reused for many source and array placements. Walls are
ordered x0, x1, y0, y1, z0, z1 (x0 is the wall at x = 0), as in gpuRIR and
rir-generator, and carry *amplitude* reflection coefficients beta; the energy
absorption is alpha = 1 - beta**2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

__all__ = ["Room", "OCTAVE_BANDS", "WALLS", "air_absorption_coefficient", "speed_of_sound"]

WALLS = ("x0", "x1", "y0", "y1", "z0", "z1")
OCTAVE_BANDS = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
_LN10_24 = 24.0 * math.log(10.0)


def speed_of_sound(temperature: float) -> float:
    """Speed of sound in air in m/s, linearised around 0 degC (c = 331.4 + 0.6 T)."""
    return 331.4 + 0.6 * temperature


def air_absorption_coefficient(freq: float, temperature: float = 20.0, humidity: float = 50.0) -> float:
    """Energy attenuation of air in 1/m at `freq` Hz (ISO 9613-1, sea-level pressure).

    An arrival over d metres is scaled in amplitude by exp(-0.5 * m * d).
    """
    t_kelvin = temperature + 273.15
    tr = t_kelvin / 293.15
    c_sat = -6.8346 * (273.16 / t_kelvin) ** 1.261 + 4.6151
    h = humidity * 10.0**c_sat  # molar concentration of water vapour in %
    fr_o = 24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h)
    fr_n = tr**-0.5 * (9.0 + 280.0 * h * math.exp(-4.170 * (tr ** (-1.0 / 3.0) - 1.0)))
    f2 = freq * freq
    db_per_m = 8.686 * f2 * (
        1.84e-11 * tr**0.5
        + tr**-2.5 * (0.01275 * math.exp(-2239.1 / t_kelvin) / (fr_o + f2 / fr_o) + 0.1068 * math.exp(-3352.0 / t_kelvin) / (fr_n + f2 / fr_n))
    )
    return db_per_m / (10.0 * math.log10(math.e))


def _check_unit(name: str, values: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not all(0.0 <= v <= 1.0 for v in out):
        raise ValueError(f"{name} must lie in [0, 1]; got {list(out)}")
    return out


@dataclass(frozen=True)
class Room:
    """A shoebox room.

    dims: (Lx, Ly, Lz) in metres, all > 0.
    beta: six amplitude reflection coefficients in [0, 1], walls x0, x1, y0, y1, z0, z1.
    band_beta: optional (6, n_bands) amplitude coefficients per octave band; when set
        it replaces `beta` in simulations that resolve bands.
    band_centers: centre frequencies in Hz of those bands (octaves 125..4000 Hz by default).
    air_absorption: attenuate every arrival by ISO 9613-1 air absorption (turns bands on).
    temperature: degC in [-40, 60]; sets c = 331.4 + 0.6 T. humidity: % in [0, 100].
    seed: seeds the diffuse tail of hybrid simulations, so a room replays bit-exact.
    """

    dims: tuple[float, float, float]
    beta: tuple[float, float, float, float, float, float]
    band_beta: tuple[tuple[float, ...], ...] | None = None
    band_centers: tuple[float, ...] = OCTAVE_BANDS
    air_absorption: bool = False
    temperature: float = 20.0
    humidity: float = 50.0
    seed: int = field(default=0)

    def __post_init__(self) -> None:
        dims = tuple(float(d) for d in self.dims)
        if len(dims) != 3 or not all(math.isfinite(d) and d > 0 for d in dims):
            raise ValueError(f"Room.dims must be three finite lengths in (0, inf) metres; got {list(self.dims)}")
        object.__setattr__(self, "dims", dims)
        if len(self.beta) != 6:
            raise ValueError(f"Room.beta must have 6 values (walls {', '.join(WALLS)}); got {len(self.beta)}")
        object.__setattr__(self, "beta", _check_unit("Room.beta", self.beta))
        centers = tuple(float(f) for f in self.band_centers)
        if not centers or any(f <= 0 for f in centers) or any(b <= a for a, b in zip(centers, centers[1:])):
            raise ValueError(f"Room.band_centers must be increasing frequencies in (0, inf) Hz; got {list(centers)}")
        object.__setattr__(self, "band_centers", centers)
        if self.band_beta is not None:
            if len(self.band_beta) != 6 or any(len(row) != len(centers) for row in self.band_beta):
                raise ValueError(f"Room.band_beta must have shape (6, {len(centers)}) (walls x bands)")
            rows = tuple(_check_unit(f"Room.band_beta[{WALLS[i]}]", row) for i, row in enumerate(self.band_beta))
            object.__setattr__(self, "band_beta", rows)
        if not -40.0 <= float(self.temperature) <= 60.0:
            raise ValueError(f"Room.temperature must lie in [-40, 60] degC; got {self.temperature}")
        if not 0.0 <= float(self.humidity) <= 100.0:
            raise ValueError(f"Room.humidity must lie in [0, 100] %; got {self.humidity}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"Room.seed must be an integer in [0, 2**63); got {self.seed}")

    # --- derived quantities -------------------------------------------------
    @property
    def c(self) -> float:
        return speed_of_sound(self.temperature)

    @property
    def volume(self) -> float:
        lx, ly, lz = self.dims
        return lx * ly * lz

    @property
    def wall_areas(self) -> tuple[float, ...]:
        lx, ly, lz = self.dims
        return (ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly)

    @property
    def absorption(self) -> tuple[float, ...]:
        """Energy absorption alpha = 1 - beta**2 per wall."""
        return tuple(1.0 - b * b for b in self.beta)

    @property
    def uses_bands(self) -> bool:
        return self.band_beta is not None or self.air_absorption

    def band_reflection(self) -> list[list[float]]:
        """(6, n_bands) amplitude coefficients: band_beta, or beta repeated over bands."""
        if self.band_beta is not None:
            return [list(row) for row in self.band_beta]
        return [[b] * len(self.band_centers) for b in self.beta]

    def air_attenuation(self) -> list[float]:
        """Energy attenuation of air in 1/m per band (zeros when air absorption is off)."""
        if not self.air_absorption:
            return [0.0] * len(self.band_centers)
        return [air_absorption_coefficient(f, self.temperature, self.humidity) for f in self.band_centers]

    def rt60(self, method: Literal["sabine", "eyring"] = "sabine") -> float:
        """Predicted broadband reverberation time in s (inf for a lossless room)."""
        areas = self.wall_areas
        alphas = self.absorption
        surface = sum(areas)
        mean_alpha = sum(s * a for s, a in zip(areas, alphas)) / surface
        if method == "sabine":
            absorbing = surface * mean_alpha
        elif method == "eyring":
            absorbing = -surface * math.log1p(-mean_alpha) if mean_alpha < 1 else math.inf
        else:
            raise ValueError(f"method must be 'sabine' or 'eyring'; got {method!r}")
        return _LN10_24 * self.volume / (self.c * absorbing) if absorbing > 0 else math.inf

    # --- constructors ---------------------------------------------------------
    @classmethod
    def from_absorption(cls, dims: Sequence[float], alpha: float | Sequence[float], **kwargs: Any) -> Room:
        """Room from energy absorption alpha (one value or six, in [0, 1])."""
        alphas = [float(alpha)] * 6 if isinstance(alpha, (int, float)) else [float(a) for a in alpha]
        _check_unit("alpha", alphas)
        return cls(dims=tuple(dims), beta=tuple(math.sqrt(1.0 - a) for a in alphas), **kwargs)

    @classmethod
    def from_rt60(cls, dims: Sequence[float], rt60: float, method: Literal["sabine", "eyring"] = "sabine", **kwargs: Any) -> Room:
        """Room whose six walls share the absorption that gives `rt60` seconds.

        Sabine needs alpha = 24 ln10 V / (c S T) <= 1, so short times are unreachable
        in large rooms; Eyring reaches every T > 0.
        """
        probe = cls(dims=tuple(dims), beta=(0.0,) * 6, **kwargs)
        k = _LN10_24 * probe.volume / (probe.c * sum(probe.wall_areas))
        if not (math.isfinite(rt60) and rt60 > 0):
            raise ValueError(f"rt60 must be a finite time in (0, inf) s; got {rt60}")
        if method == "sabine":
            if rt60 < k:
                raise ValueError(
                    f"rt60={rt60:.3f} s is unreachable for a {probe.dims} m room with Sabine's formula: "
                    f"valid range is [{k:.3f}, inf) s"
                )
            alpha = k / rt60
        elif method == "eyring":
            alpha = -math.expm1(-k / rt60)
        else:
            raise ValueError(f"method must be 'sabine' or 'eyring'; got {method!r}")
        return cls.from_absorption(dims, alpha, **kwargs)

    # --- serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dims"] = list(self.dims)
        out["beta"] = list(self.beta)
        out["band_centers"] = list(self.band_centers)
        out["band_beta"] = None if self.band_beta is None else [list(r) for r in self.band_beta]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Room:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Room.from_dict got unknown fields {sorted(unknown)}; valid fields are {sorted(known)}")
        data = dict(data)
        data["dims"] = tuple(data["dims"])
        data["beta"] = tuple(data["beta"])
        if data.get("band_beta") is not None:
            data["band_beta"] = tuple(tuple(r) for r in data["band_beta"])
        if "band_centers" in data:
            data["band_centers"] = tuple(data["band_centers"])
        return cls(**data)
