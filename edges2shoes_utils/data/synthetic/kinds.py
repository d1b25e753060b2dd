"""The five kinds of synthetic shoe: sneaker, boot, heel, loafer and sandal. Each builder draws its
shape, details and colours from `rng` and returns a `Shoe` to render."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .palettes import BLACK, GUM, KIND_MATERIALS, PALETTES, RGB, contrast, pick, shade, vary
from .shapes import Shoe, Sole, arc_points, band, offset, smooth

KINDS: tuple[str, ...] = ("sneaker", "boot", "heel", "loafer", "sandal")

# colour draws for `_start`: which list of the kind's palette, and how far the shade may move
UPPER = ("upper", 14)
SOLE = ("sole", 6)
FOOTBED = ("sole", 8)


def _start(rng: np.random.Generator, kind: str, *draws: tuple[str, int]) -> tuple[Shoe, list[RGB]]:
    """A new shoe of `kind` in one of its materials, and one colour per draw from its palette,
    drawn from `rng` in that order (the order fixes every later random number, hence the files)."""
    shoe = Shoe(kind, pick(rng, KIND_MATERIALS[kind]))
    palette = PALETTES[kind]
    return shoe, [vary(rng, pick(rng, palette[name]), amount) for name, amount in draws]



def _sneaker(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe, (upper, accent, sole_colour) = _start(rng, "sneaker", UPPER, UPPER, SOLE)
    lace = contrast(upper) if rng.random() < 0.6 else vary(rng, upper, 8)
    gloss = shoe.gloss
    sole = Sole(u(0.06, 0.1), heel=u(0.0, 0.02), spring=u(0.02, 0.05))
    high = rng.random() < 0.25
    tx = u(0.42, 0.48)  # the throat: where the lacing ends and the tongue comes out
    front_h = u(0.42, 0.5) if high else u(0.26, 0.3)  # collar height at the front, above the sole
    tab_h = front_h + u(-0.01, 0.02) if high else u(0.21, 0.25)  # at the heel tab
    dip_h = min(front_h, tab_h) - (u(0.0, 0.02) if high else u(0.04, 0.07))
    at = sole.at
    front = at(tx + 0.05, front_h)
    # tongue, behind the upper
    shoe.poly(smooth([at(tx - 0.08, 0.2), at(tx - 0.01, front_h + 0.05), at(tx + 0.07, front_h + 0.05),
                      at(tx + 0.09, front_h - 0.06)]), shade(upper, 0.92), texture=True, gloss=gloss)
    collar = [front, at(0.72, dip_h), at(0.93, tab_h)]
    outline = [at(0.004, 0.008), at(0.03, 0.05), at(0.09, 0.09), at(0.2, 0.13), at(0.3, 0.175),
               at(tx, 0.25 if not high else 0.3), *collar, at(1.0, tab_h * 0.6), at(1.01, 0.05),
               at(1.0, -sole.thickness * 0.5), at(0.5, -sole.thickness * 0.5), at(0.05, -sole.thickness * 0.4)]
    shoe.poly(smooth(outline), upper, texture=True, gloss=gloss, base=True)
    # padded collar band along the opening
    spine = smooth(collar, closed=False)
    shoe.poly(band(spine - [0, 0.018], 0.036), shade(upper, 0.85), gloss=gloss, clip=True)
    if rng.random() < 0.4:  # heel pull tab
        shoe.line([at(0.955, tab_h - 0.03), at(0.975, tab_h + 0.035)], 0.022, vary(rng, accent, 6))
    if rng.random() < 0.7:  # toe cap
        cap = vary(rng, pick(rng, [upper, accent, (240, 240, 238)]), 6)
        edge = smooth([at(0.16, 0.16), at(0.185, 0.08), at(0.17, -0.02)], closed=False)
        shoe.poly(np.concatenate([edge, [(-0.05, 0.0), (-0.05, 0.4)]]), cap, gloss=gloss, clip=True)
        shoe.stitches(edge - [0.015, 0], shade(cap, 0.55))
    if rng.random() < 0.8:  # heel counter
        edge = smooth([at(0.8, -0.02), at(0.82, tab_h * 0.45), at(0.95, tab_h * 0.7), at(1.05, tab_h * 0.75)],
                      closed=False)
        counter = vary(rng, pick(rng, [accent, shade(upper, 0.8)]), 6)
        shoe.poly(np.concatenate([edge, [(1.05, -0.1), (0.8, -0.1)]]), counter, gloss=gloss, clip=True)
        shoe.stitches(edge + [0.012, 0], shade(counter, 0.55))
    if rng.random() < 0.75:  # side stripe
        a, b = u(0.28, 0.4), u(0.7, 0.82)
        spine = smooth([at(a, 0.02), at((a + b) / 2, 0.06 + u(0, 0.04)), at(b, 0.1 + u(0, 0.06))], closed=False)
        shoe.poly(band(spine, u(0.03, 0.06)), accent, gloss=gloss, clip=True)
    # eyestay, eyelets and laces
    lacing = smooth([at(tx + 0.005, 0.235 if not high else front_h - 0.04), at(tx - 0.1, 0.19), at(0.24, 0.135)],
                    closed=False)
    stay = vary(rng, pick(rng, [accent, shade(upper, 0.8), upper]), 6)
    shoe.poly(band(offset(lacing, -0.012), 0.05), stay, gloss=gloss, clip=True)
    eyelets = arc_points(lacing, u(0.035, 0.045))
    shoe.dots(offset(eyelets, -0.018), 0.007, (70, 70, 72), gloss=0.5)
    for p, q in zip(eyelets[:-1], eyelets[1:]):
        shoe.line([p + [0.004, 0.012], q - [0.004, 0.004]], 0.012, shade(lace, 0.8))
        shoe.line([p - [0.006, 0.004], q + [0.006, 0.014]], 0.012, lace)
    # midsole, outsole strip, stitching
    top = sole.draw(shoe, sole_colour)
    if rng.random() < 0.7:
        strip = vary(rng, pick(rng, [GUM, BLACK, shade(sole_colour, 0.75)]), 6)
        xs = np.linspace(0.03, 0.99, 20)
        low = np.stack([xs, sole.bottom(xs)], axis=1)
        shoe.poly(np.concatenate([low + [0, sole.thickness * 0.3], low[::-1] - [0, 0.002]]), strip)
    if rng.random() < 0.6:
        shoe.stitches(offset(top, -0.014)[2:-2], shade(sole_colour, 0.55), clip=False)
    return shoe


def _boot(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe, (upper, sole_colour) = _start(rng, "boot", UPPER, SOLE)
    gloss = shoe.gloss
    style = pick(rng, ["work", "work", "chelsea", "heeled"])
    heeled = style == "heeled"
    sole = Sole(u(0.03, 0.045) if heeled else u(0.05, 0.08), heel=u(0.1, 0.2) if heeled else u(0.03, 0.06),
                spring=u(0.02, 0.04), heel_front=u(0.8, 0.84) if heeled else 0.76)
    at = sole.at
    height = u(0.48, 0.68)
    fx = u(0.34, 0.4)
    back = u(0.88, 0.93)
    outline = [at(0.004, 0.01), at(0.04, 0.07), at(0.12, 0.115), at(0.24, 0.165), at(fx, 0.25),
               at(fx + 0.04, 0.42), (fx + 0.06, height), (0.65, height + u(-0.015, 0.015)), (back, height),
               (back - 0.02, (height + sole.top(1.0)) / 2 + 0.05), at(0.985, 0.12), at(1.005, 0.03),
               at(1.0, -sole.thickness * 0.5), at(0.5, -sole.thickness * 0.5), at(0.04, -sole.thickness * 0.4)]
    shoe.poly(smooth(outline), upper, texture=True, gloss=gloss, base=True)
    rim = smooth([(fx + 0.02, height), (0.65, height), (back + 0.03, height)], closed=False)
    shoe.poly(band(rim - [0, 0.02], 0.04), shade(upper, 1.15 if sum(upper) < 200 else 0.85), gloss=gloss, clip=True)
    if style == "work":
        edge = smooth([at(0.14, 0.2), at(0.19, 0.1), at(0.18, -0.02)], closed=False)
        shoe.poly(np.concatenate([edge, [(-0.05, 0.0), (-0.05, 0.4)]]), shade(upper, 0.88), gloss=gloss, clip=True)
        shoe.stitches(edge - [0.014, 0], contrast(upper))
        lacing = smooth([(fx + 0.07, height - 0.05), at(fx + 0.03, 0.33), at(fx - 0.06, 0.22)], closed=False)
        shoe.poly(band(lacing, 0.06), shade(upper, 0.8), gloss=gloss, clip=True)
        hooks = arc_points(lacing, u(0.045, 0.06))
        shoe.dots(offset(hooks, 0.012), 0.009, (190, 170, 110), gloss=0.8)
        lace = pick(rng, [(150, 40, 30), (206, 186, 146), (40, 36, 34)])
        for p, q in zip(hooks[:-1], hooks[1:]):
            shoe.line([p + [0.012, 0.0], q + [-0.008, 0.01]], 0.011, lace)
        shoe.stitches(offset(smooth([at(fx - 0.12, 0.19), at(0.6, 0.12), at(0.9, 0.16)], closed=False), 0),
                      contrast(upper))
    elif style == "chelsea":
        gore = vary(rng, (44, 42, 42), 6)
        gx = u(0.55, 0.66)
        shoe.poly([(gx - 0.09, height + 0.01), (gx + 0.09, height + 0.01), at(gx + 0.015, 0.2), at(gx - 0.015, 0.2)],
                  gore, gloss=0.05, clip=True)
        for k in np.linspace(-0.06, 0.06, 5):
            shoe.line([(gx + k, height - 0.01), at(gx + k * 0.2, 0.21)], 0.004, shade(gore, 1.4), clip=True)
        shoe.line([(back - 0.01, height - 0.03), (back, height + 0.06)], 0.03, vary(rng, (60, 56, 52), 8))
    else:  # heeled boot with a zip at the back
        zip_line = smooth([(back - 0.01, height - 0.01), (back - 0.03, (height + sole.top(1.0)) / 2 + 0.04),
                           at(0.97, 0.1)], closed=False)
        shoe.line(zip_line, 0.012, (150, 150, 155), gloss=0.9, clip=True)
        shoe.dots([(back - 0.012, height - 0.03)], 0.015, (180, 180, 186), gloss=0.9)
    sole.draw(shoe, sole_colour, shade(sole_colour, 0.8) if not heeled else shade(upper, 0.85))
    return shoe


def _heel(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe, (upper, sole_colour) = _start(rng, "heel", UPPER, SOLE)
    gloss = shoe.gloss
    hh = u(0.24, 0.42)  # heel height
    block = rng.random() < 0.3
    pointed = rng.random() < 0.6
    ts = 0.02  # sole thickness
    seat = u(0.8, 0.84)
    # the sole: toe and ball on the ground, the arch rising to the heel seat
    sole_line = smooth([(0.0, 0.025 if pointed else 0.035), (0.1, 0.0), (0.3, 0.0), (0.5, hh * 0.35),
                        (0.7, hh * 0.85), (0.99, hh)], closed=False)
    counter = u(0.1, 0.14)
    vamp = u(0.3, 0.38)  # where the opening starts
    top_line = smooth([(0.995, hh + counter), (0.85, hh + counter * 0.8), (0.62, hh * 0.62 + 0.06),
                       (vamp, 0.11 + u(0.0, 0.03)), (vamp - 0.08, 0.13), (0.08, 0.095 if pointed else 0.11),
                       (0.0, 0.025 if pointed else 0.04)], closed=False)
    # the insole and far side seen through the opening, behind the near side
    opening = top_line[(top_line[:, 0] > vamp - 0.02) & (top_line[:, 0] < 0.97)]
    if len(opening) > 2:
        lift = 0.035 * np.sin(np.linspace(0, np.pi, len(opening)))[:, None] * [0, 1]
        shoe.poly(np.concatenate([opening - [0, 0.02], (opening + lift + [0, 0.012])[::-1]]),
                  vary(rng, (214, 190, 160), 8))
    shoe.poly(np.concatenate([sole_line + [0, ts * 0.5], top_line]), upper, texture=True, gloss=gloss, base=True)
    if rng.random() < 0.3:  # ankle strap with a buckle
        strap_y = hh + counter + u(0.04, 0.08)
        shoe.poly(band(smooth([(0.99, hh + counter - 0.02), (0.995, strap_y)], closed=False), 0.03), upper,
                  gloss=gloss)
        shoe.poly(band(smooth([(0.66, strap_y - 0.03), (0.82, strap_y + 0.005), (1.0, strap_y)], closed=False),
                        0.026), upper, gloss=gloss)
        shoe.dots([(0.8, strap_y + 0.004)], 0.014, (200, 175, 110), gloss=0.9)
    elif rng.random() < 0.3:  # bow on the vamp
        shoe.dots([(vamp - 0.1, 0.125), (vamp - 0.06, 0.125)], 0.024, shade(upper, 0.8), gloss=gloss)
    # heel column
    if block:
        shoe.poly([(seat, hh + 0.005), (0.99, hh + 0.005), (0.975, 0.0), (seat + 0.05, 0.0)],
                  shade(upper, 0.88), gloss=gloss)
    else:
        tip = u(0.88, 0.92)
        shoe.poly(smooth([(seat, hh + 0.005), (0.99, hh + 0.005), (0.96, hh * 0.55), (tip + 0.012, 0.03),
                          (tip + 0.012, 0.0), (tip - 0.008, 0.0), (tip - 0.008, 0.03), (0.9, hh * 0.55)]),
                  shade(upper, 0.88), gloss=gloss)
    shoe.line(sole_line + [0, ts * 0.5], ts, sole_colour)
    return shoe


def _loafer(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe, (upper, sole_colour) = _start(rng, "loafer", UPPER, SOLE)
    gloss = shoe.gloss
    sole = Sole(u(0.03, 0.045), heel=u(0.03, 0.05), spring=u(0.015, 0.03), heel_front=0.78)
    at = sole.at
    top_h = u(0.17, 0.21)
    tx = u(0.46, 0.53)
    collar = [at(tx, top_h + 0.02), at(0.72, top_h - u(0.02, 0.04)), at(0.95, top_h)]
    # lining inside the opening
    spine = smooth(collar, closed=False)
    shoe.poly(np.concatenate([spine - [0, 0.03], (spine + [0, 0.018])[::-1]]), vary(rng, (190, 150, 110), 8))
    outline = [at(0.004, 0.01), at(0.04, 0.075), at(0.13, 0.125), at(0.3, 0.17), *collar, at(1.01, top_h * 0.6),
               at(1.0, -sole.thickness * 0.5), at(0.5, -sole.thickness * 0.5), at(0.04, -sole.thickness * 0.4)]
    shoe.poly(smooth(outline), upper, texture=True, gloss=gloss, base=True)
    # moccasin apron: a raised seam around the top of the toe
    apron = smooth([at(0.02, 0.03), at(0.07, 0.085), at(0.16, 0.115), at(0.28, 0.135), at(tx - 0.04, 0.16)],
                   closed=False)
    shoe.line(apron, 0.008, shade(upper, 0.6), clip=True)
    shoe.stitches(offset(apron, -0.016), shade(upper, 0.65 if sum(upper) > 250 else 1.7))
    trim = pick(rng, ["penny", "horsebit", "tassel", "plain"])
    if trim == "penny":
        penny_strap = band(smooth([at(tx - 0.19, 0.115), at(tx - 0.1, 0.14), at(tx - 0.01, 0.165)], closed=False),
                           0.045)
        shoe.poly(penny_strap, shade(upper, 0.9), gloss=gloss, clip=True)
        shoe.poly(band(smooth([at(tx - 0.13, 0.132), at(tx - 0.07, 0.148)], closed=False), 0.012),
                  shade(upper, 0.3), clip=True)
    elif trim == "horsebit":
        shoe.line([at(tx - 0.17, 0.12), at(tx - 0.05, 0.15)], 0.012, (205, 175, 100), gloss=0.9)
        shoe.dots([at(tx - 0.17, 0.12), at(tx - 0.05, 0.15)], 0.014, (205, 175, 100), gloss=0.9)
    elif trim == "tassel":
        for k in (0.0, 0.022):
            shoe.line([at(tx - 0.08 + k, 0.155), at(tx - 0.1 + k, 0.08)], 0.01, shade(upper, 0.8))
            shoe.dots([at(tx - 0.1 + k, 0.075)], 0.013, shade(upper, 0.75))
    sole.draw(shoe, sole_colour, shade(sole_colour, 0.7), gloss=0.2)
    for k in (1, 2):  # stacked leather heel
        y = sole.heel * k / 3
        shoe.line([(sole.heel_front + 0.02, y), (0.99, y)], 0.003, shade(sole_colour, 0.5))
    return shoe


def _sandal(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe, (strap, bed) = _start(rng, "sandal", UPPER, FOOTBED)
    gloss = shoe.gloss
    wedge = rng.random() < 0.35
    sole = Sole(u(0.04, 0.09), heel=u(0.08, 0.18) if wedge else u(0.0, 0.02), spring=0.02,
                heel_front=0.7 if wedge else 0.76)
    at = sole.at
    w = u(0.022, 0.035)  # strap width

    def foot(x: float) -> float:  # height of the (absent) foot's top above the footbed
        return 0.06 + 0.18 * min(x / 0.6, 1.0) ** 0.8

    inner = shade(strap, 0.7)
    n_straps = int(rng.integers(2, 4))
    span = u(0.14, 0.2)
    for k in range(n_straps):  # arches over the forefoot: far half (darker) then near half
        x0 = 0.08 + k * (0.42 - span / 2) / max(n_straps - 1, 1)
        top = foot(x0 + span / 2)
        arch = smooth([at(x0, 0.0), at(x0 + span * 0.2, top * 0.75), at(x0 + span / 2, top),
                       at(x0 + span * 0.8, top * 0.75), at(x0 + span, 0.0)], closed=False)
        shoe.poly(band(arch[len(arch) // 2:], w), inner, texture=True, gloss=gloss)
        shoe.poly(band(arch[: len(arch) // 2 + 2], w), strap, texture=True, gloss=gloss)
    ankle = at(0.82, u(0.22, 0.3))
    ring = smooth([(0.64, ankle[1] - 0.03), (0.8, ankle[1] + 0.006), (0.99, ankle[1])], closed=False)
    shoe.poly(band(ring, w * 1.6), strap, texture=True, gloss=gloss)
    back = smooth([(0.99, ankle[1]), at(1.0, (ankle[1] - sole.top(1.0)) * 0.5), at(0.985, 0.0)], closed=False)
    shoe.poly(band(back, w * 2), strap, texture=True, gloss=gloss)
    bx, by = 0.8, ankle[1] + 0.008
    shoe.poly([(bx - 0.025, by + 0.03), (bx + 0.025, by + 0.03), (bx + 0.025, by - 0.03), (bx - 0.025, by - 0.03)],
              (202, 178, 112), gloss=0.9)
    shoe.poly([(bx - 0.012, by + 0.018), (bx + 0.012, by + 0.018), (bx + 0.012, by - 0.018), (bx - 0.012, by - 0.018)],
              shade(strap, 0.8))
    top = sole.draw(shoe, vary(rng, pick(rng, PALETTES["sandal"]["sole"]), 8), gloss=0.1)
    shoe.poly(np.concatenate([top + [0, 0.004], (top - [0, 0.016])[::-1]]), bed)  # footbed layer
    return shoe


BUILDERS: dict[str, Callable[[np.random.Generator], Shoe]] = {
    "sneaker": _sneaker,
    "boot": _boot,
    "heel": _heel,
    "loafer": _loafer,
    "sandal": _sandal,
}
