/**
 * The subjects' drawings: each class is a list of parts (shapes in the subject's own units: facing right,
 * feet at y = 0, head near y = -1, y pointing down as on screen), built for a pose. Parts are painted in
 * order, so later parts cover earlier ones (far legs first, the head and accessories last).
 */
import { capsule, circle, ellipse, polygon, ring, roundRect, type RGB, type Shape } from './raster.js';
import type { AccessoryName, ActionName, ClassName } from './vocab.js';

/** How a part is coloured: the body colour (with the pattern), a darker or lighter tone of it, or a fixed colour. */
export type Fill = 'body' | 'dark' | 'light' | RGB;

export interface Part {
  shape: Shape;
  fill: Fill;
}

/** Where an accessory sits, in the subject's units: the top of the head (hat, crown) or the neck (bow). */
interface Anchor {
  x: number;
  y: number;
  /** Size relative to a head of radius 0.17. */
  k: number;
}

export interface SubjectModel {
  parts: Part[];
  /** Turn of the whole subject on screen (radians, facing right; mirrored with the subject). */
  rot: number;
  /** Height above the ground, in the subject's units (jumping). */
  lift: number;
}

interface Drawing {
  parts: Part[];
  top: Anchor;
  neck: Anchor;
  rot?: number;
}

type Pose = 'standing' | 'sitting' | 'jumping' | 'lying down';

const BLACK: RGB = [25, 25, 28];
const WHITE: RGB = [250, 250, 250];
const PINK_NOSE: RGB = [235, 110, 140];
const BEAK: RGB = [250, 150, 20];
const TYRE: RGB = [45, 45, 50];
const HUB: RGB = [190, 190, 200];
const GLASS: RGB = [185, 225, 245];
const COFFEE: RGB = [90, 50, 25];

const part = (shape: Shape, fill: Fill = 'body'): Part => ({ shape, fill });

// --- quadrupeds: cat and dog share the body plan, their heads and tails differ

interface QuadrupedLook {
  head(hx: number, hy: number): Part[];
  tail(pose: Pose): Part[];
  legR: number;
  bodyRy: number;
}

function quadruped(pose: Pose, look: QuadrupedLook): Drawing {
  const r = look.legR;
  const parts: Part[] = [...look.tail(pose)];
  let hx: number;
  let hy: number;
  if (pose === 'sitting') {
    parts.push(part(capsule(0.1, -0.32, 0.1, -0.02, r), 'dark'));
    parts.push(part(ellipse(-0.1, -0.17, 0.22, 0.17)));
    parts.push(part(ellipse(0.02, -0.42, 0.16, 0.3, 0.3)));
    parts.push(part(capsule(0.19, -0.32, 0.19, -0.02, r)));
    [hx, hy] = [0.14, -0.78];
  } else if (pose === 'jumping') {
    parts.push(part(capsule(-0.22, -0.38, -0.5, -0.22, r), 'dark'), part(capsule(0.28, -0.44, 0.56, -0.38, r), 'dark'));
    parts.push(part(ellipse(0, -0.45, 0.4, look.bodyRy, -0.12)));
    parts.push(part(capsule(-0.3, -0.36, -0.58, -0.26, r)), part(capsule(0.22, -0.42, 0.5, -0.28, r)));
    [hx, hy] = [0.44, -0.72];
  } else if (pose === 'lying down') {
    parts.push(part(ellipse(-0.24, -0.11, 0.16, 0.1), 'dark'), part(capsule(0.2, -0.1, 0.5, -0.1, r), 'dark'));
    parts.push(part(ellipse(0, -0.17, 0.42, look.bodyRy * 0.95)));
    parts.push(part(capsule(0.16, -0.05, 0.48, -0.04, r)));
    [hx, hy] = [0.42, -0.36];
  } else {
    parts.push(part(capsule(-0.22, -0.3, -0.24, -0.02, r), 'dark'), part(capsule(0.28, -0.3, 0.3, -0.02, r), 'dark'));
    parts.push(part(ellipse(0, -0.4, 0.4, look.bodyRy)));
    parts.push(part(capsule(-0.3, -0.3, -0.32, -0.02, r)), part(capsule(0.2, -0.3, 0.21, -0.02, r)));
    [hx, hy] = [0.42, -0.64];
  }
  parts.push(...look.head(hx, hy));
  return { parts, top: { x: hx - 0.01, y: hy - 0.16, k: 0.9 }, neck: { x: hx - 0.06, y: hy + 0.15, k: 0.9 } };
}

const cat: QuadrupedLook = {
  legR: 0.05,
  bodyRy: 0.15,
  head: (hx, hy) => [
    part(polygon([hx - 0.14, hy - 0.04, hx - 0.12, hy - 0.3, hx + 0.02, hy - 0.13])),
    part(polygon([hx + 0.0, hy - 0.14, hx + 0.13, hy - 0.3, hx + 0.16, hy - 0.03])),
    part(circle(hx, hy, 0.16)),
    part(circle(hx + 0.07, hy - 0.03, 0.035), BLACK),
    part(circle(hx + 0.155, hy + 0.035, 0.028), PINK_NOSE),
  ],
  tail: (pose) =>
    pose === 'sitting'
      ? [part(capsule(-0.15, -0.04, -0.45, -0.05, 0.045)), part(capsule(-0.45, -0.05, -0.52, -0.2, 0.045))]
      : pose === 'lying down'
        ? [part(capsule(-0.36, -0.12, -0.62, -0.06, 0.045)), part(capsule(-0.62, -0.06, -0.72, -0.16, 0.045))]
        : [part(capsule(-0.36, -0.44, -0.56, -0.6, 0.045)), part(capsule(-0.56, -0.6, -0.52, -0.84, 0.045))],
};

const dog: QuadrupedLook = {
  legR: 0.065,
  bodyRy: 0.18,
  head: (hx, hy) => [
    part(circle(hx, hy, 0.16)),
    part(ellipse(hx + 0.15, hy + 0.05, 0.12, 0.075)),
    part(circle(hx + 0.26, hy + 0.02, 0.04), BLACK),
    part(circle(hx + 0.05, hy - 0.05, 0.035), BLACK),
    part(ellipse(hx - 0.07, hy + 0.04, 0.065, 0.14, 0.25), 'dark'),
  ],
  tail: (pose) =>
    pose === 'sitting'
      ? [part(capsule(-0.22, -0.06, -0.45, -0.1, 0.05))]
      : pose === 'lying down'
        ? [part(capsule(-0.36, -0.16, -0.6, -0.22, 0.05))]
        : [part(capsule(-0.36, -0.5, -0.52, -0.74, 0.05))],
};

// --- upright characters

function duck(pose: Pose): Drawing {
  const parts: Part[] = [];
  const low = pose === 'sitting' ? 0.12 : 0;
  if (pose === 'standing' || pose === 'jumping') {
    const dy = pose === 'jumping' ? 0.04 : 0;
    parts.push(part(capsule(-0.06, -0.2, -0.08, -0.04 + dy, 0.025), BEAK), part(capsule(0.08, -0.2, 0.08, -0.04 + dy, 0.025), BEAK));
    parts.push(part(ellipse(-0.04, -0.03 + dy, 0.08, 0.03), BEAK), part(ellipse(0.11, -0.03 + dy, 0.08, 0.03), BEAK));
  }
  parts.push(part(polygon([-0.3, -0.32 + low, -0.52, -0.56 + low, -0.38, -0.5 + low])));
  parts.push(part(ellipse(-0.04, -0.36 + low, 0.37, 0.22)));
  parts.push(part(ellipse(0.2, -0.55 + low, 0.1, 0.15)));
  parts.push(part(circle(0.22, -0.74 + low, 0.16)));
  parts.push(part(ellipse(0.41, -0.7 + low, 0.13, 0.05), BEAK));
  parts.push(part(circle(0.27, -0.78 + low, 0.032), BLACK));
  if (pose === 'jumping') parts.push(part(ellipse(-0.14, -0.6, 0.09, 0.24, -0.6), 'dark'));
  else parts.push(part(ellipse(-0.1, -0.37 + low, 0.2, 0.1, -0.2), 'dark'));
  return { parts, top: { x: 0.21, y: -0.89 + low, k: 0.9 }, neck: { x: 0.18, y: -0.55 + low, k: 0.8 } };
}

function rabbit(pose: Pose): Drawing {
  const parts: Part[] = [];
  const low = pose === 'sitting' ? 0.1 : 0;
  parts.push(part(circle(-0.2, -0.2 + low * 0.5, 0.075), 'light'));
  if (pose === 'sitting') parts.push(part(ellipse(0.12, -0.05, 0.17, 0.05)), part(ellipse(0.2, -0.09, 0.15, 0.05), 'dark'));
  else if (pose === 'jumping') parts.push(part(capsule(-0.04, -0.1, -0.2, 0.04, 0.05), 'dark'), part(capsule(0.06, -0.1, -0.08, 0.06, 0.05)));
  else parts.push(part(ellipse(-0.05, -0.03, 0.12, 0.045), 'dark'), part(ellipse(0.12, -0.03, 0.12, 0.045)));
  parts.push(part(ellipse(0, -0.28 + low, 0.19, 0.25)));
  if (pose === 'jumping') parts.push(part(capsule(0.1, -0.36, 0.24, -0.5, 0.045)));
  else parts.push(part(ellipse(0.13, -0.3 + low, 0.05, 0.1, -0.3)));
  const hy = -0.6 + low;
  parts.push(part(ellipse(-0.03, hy - 0.28, 0.055, 0.18, -0.15)), part(ellipse(0.1, hy - 0.28, 0.055, 0.18, 0.15)));
  parts.push(part(ellipse(-0.03, hy - 0.27, 0.025, 0.12, -0.15), PINK_NOSE), part(ellipse(0.1, hy - 0.27, 0.025, 0.12, 0.15), PINK_NOSE));
  parts.push(part(circle(0.04, hy, 0.15)));
  parts.push(part(circle(0.1, hy - 0.03, 0.03), BLACK), part(circle(0.18, hy + 0.03, 0.025), PINK_NOSE));
  return { parts, top: { x: 0.04, y: hy - 0.14, k: 0.8 }, neck: { x: 0.04, y: hy + 0.15, k: 0.8 } };
}

function teddy(pose: Pose): Drawing {
  const parts: Part[] = [];
  const low = pose === 'sitting' ? 0.1 : 0;
  if (pose === 'sitting') parts.push(part(ellipse(-0.2, -0.08, 0.13, 0.08, -0.2)), part(ellipse(0.2, -0.08, 0.13, 0.08, 0.2)));
  else if (pose === 'jumping') parts.push(part(ellipse(-0.17, -0.09, 0.08, 0.12, 0.5)), part(ellipse(0.17, -0.09, 0.08, 0.12, -0.5)));
  else parts.push(part(ellipse(-0.13, -0.09, 0.09, 0.1)), part(ellipse(0.13, -0.09, 0.09, 0.1)));
  if (pose === 'jumping') parts.push(part(ellipse(-0.25, -0.56, 0.07, 0.15, -0.5)), part(ellipse(0.25, -0.56, 0.07, 0.15, 0.5)));
  else parts.push(part(ellipse(-0.25, -0.36 + low, 0.07, 0.14, 0.5)), part(ellipse(0.25, -0.36 + low, 0.07, 0.14, -0.5)));
  parts.push(part(ellipse(0, -0.33 + low, 0.21, 0.24)));
  parts.push(part(ellipse(0, -0.3 + low, 0.12, 0.14), 'light'));
  const hy = -0.7 + low;
  parts.push(part(circle(-0.14, hy - 0.16, 0.075)), part(circle(0.14, hy - 0.16, 0.075)));
  parts.push(part(circle(-0.14, hy - 0.16, 0.035), 'light'), part(circle(0.14, hy - 0.16, 0.035), 'light'));
  parts.push(part(circle(0, hy, 0.18)));
  parts.push(part(ellipse(0, hy + 0.07, 0.085, 0.06), 'light'), part(circle(0, hy + 0.045, 0.03), BLACK));
  parts.push(part(circle(-0.07, hy - 0.04, 0.03), BLACK), part(circle(0.07, hy - 0.04, 0.03), BLACK));
  return { parts, top: { x: 0, y: hy - 0.17, k: 0.95 }, neck: { x: 0, y: hy + 0.18, k: 0.9 } };
}

function robot(pose: Pose): Drawing {
  // boxy and wide-headed, so its silhouette stays apart from the round teddy bear's
  const parts: Part[] = [];
  const low = pose === 'sitting' ? 0.14 : 0;
  if (pose === 'sitting') parts.push(part(roundRect(-0.24, -0.06, 0.12, 0.055, 0.01)), part(roundRect(0.24, -0.06, 0.12, 0.055, 0.01)));
  else if (pose === 'jumping') parts.push(part(roundRect(-0.15, -0.13, 0.05, 0.13, 0.01, 0.35)), part(roundRect(0.15, -0.13, 0.05, 0.13, 0.01, -0.35)));
  else parts.push(part(roundRect(-0.11, -0.13, 0.055, 0.13, 0.01)), part(roundRect(0.11, -0.13, 0.055, 0.13, 0.01)));
  if (pose === 'jumping') parts.push(part(roundRect(-0.34, -0.66, 0.045, 0.15, 0.01, 0.4)), part(roundRect(0.34, -0.66, 0.045, 0.15, 0.01, -0.4)));
  else parts.push(part(capsule(-0.32, -0.56 + low, -0.32, -0.3 + low, 0.045)), part(capsule(0.32, -0.56 + low, 0.32, -0.3 + low, 0.045)));
  parts.push(part(roundRect(0, -0.44 + low, 0.25, 0.19, 0.015)));
  parts.push(part(roundRect(0, -0.44 + low, 0.11, 0.08, 0.01), 'light'));
  parts.push(part(circle(0, -0.44 + low, 0.035), [230, 40, 40]));
  const hy = -0.8 + low;
  parts.push(part(capsule(0, hy - 0.12, 0, hy - 0.24, 0.018), HUB), part(circle(0, hy - 0.25, 0.045), [230, 40, 40]));
  parts.push(part(roundRect(-0.22, hy, 0.03, 0.05, 0.01), HUB), part(roundRect(0.22, hy, 0.03, 0.05, 0.01), HUB));
  parts.push(part(roundRect(0, hy, 0.2, 0.14, 0.015)));
  parts.push(part(circle(-0.08, hy - 0.01, 0.045), [255, 235, 120]), part(circle(0.08, hy - 0.01, 0.045), [255, 235, 120]));
  parts.push(part(roundRect(0, hy + 0.08, 0.08, 0.015, 0.005), BLACK));
  return { parts, top: { x: 0, y: hy - 0.14, k: 1 }, neck: { x: 0, y: hy + 0.17, k: 0.9 } };
}

// --- objects: their actions are whole-body turns and lifts

function car(): Drawing {
  const parts: Part[] = [
    part(polygon([-0.36, -0.34, -0.25, -0.58, 0.18, -0.58, 0.34, -0.34])),
    part(polygon([-0.28, -0.36, -0.21, -0.53, -0.04, -0.53, -0.04, -0.36]), GLASS),
    part(polygon([0.02, -0.36, 0.02, -0.53, 0.15, -0.53, 0.26, -0.36]), GLASS),
    part(roundRect(0, -0.24, 0.6, 0.13, 0.06)),
    part(circle(0.55, -0.28, 0.035), [255, 240, 130]),
    part(circle(-0.34, -0.12, 0.12), TYRE),
    part(circle(0.34, -0.12, 0.12), TYRE),
    part(circle(-0.34, -0.12, 0.05), HUB),
    part(circle(0.34, -0.12, 0.05), HUB),
  ];
  return { parts, top: { x: -0.03, y: -0.58, k: 1 }, neck: { x: 0.42, y: -0.3, k: 0.9 } };
}

function cup(): Drawing {
  const parts: Part[] = [
    part(ring(0.27, -0.36, 0.13, 0.045)),
    part(roundRect(0, -0.34, 0.24, 0.32, 0.05)),
    part(ellipse(0, -0.66, 0.24, 0.06), 'dark'),
    part(ellipse(0, -0.655, 0.19, 0.04), COFFEE),
  ];
  return { parts, top: { x: 0, y: -0.7, k: 1 }, neck: { x: 0, y: -0.52, k: 1 } };
}

function fish(): Drawing {
  const parts: Part[] = [
    part(polygon([-0.28, -0.4, -0.58, -0.62, -0.5, -0.4, -0.58, -0.18])),
    part(polygon([-0.14, -0.52, 0.0, -0.7, 0.14, -0.54])),
    part(ellipse(0, -0.4, 0.36, 0.19)),
    part(ellipse(-0.02, -0.36, 0.1, 0.05, 0.4), 'dark'),
    part(circle(0.2, -0.44, 0.055), WHITE),
    part(circle(0.22, -0.44, 0.028), BLACK),
    part(capsule(0.3, -0.35, 0.35, -0.36, 0.012), BLACK),
  ];
  return { parts, top: { x: 0.05, y: -0.58, k: 0.85 }, neck: { x: 0.1, y: -0.28, k: 0.8 } };
}

function box(): Drawing {
  // a cardboard box with its flaps open: the flaps make it neither a cup nor the same shape turned over
  const parts: Part[] = [
    part(polygon([-0.3, -0.5, -0.46, -0.72, -0.36, -0.76, -0.2, -0.5]), 'dark'),
    part(polygon([0.3, -0.5, 0.46, -0.72, 0.36, -0.76, 0.2, -0.5]), 'dark'),
    part(roundRect(0, -0.26, 0.32, 0.26, 0.015)),
    part(roundRect(0, -0.5, 0.3, 0.02, 0), 'dark'),
  ];
  return { parts, top: { x: 0, y: -0.52, k: 1 }, neck: { x: 0, y: -0.3, k: 1 } };
}

/** Objects lean back to "sit" (on a corner, on the tail) and tip forward as they jump. */
const objectPose = (draw: () => Drawing) => (pose: Pose) => ({ ...draw(), rot: pose === 'sitting' ? -0.4 : pose === 'jumping' ? 0.15 : 0 });

interface ClassDrawing {
  draw(pose: Pose): Drawing;
  /** The class has its own lying pose; the others lie by turning the standing drawing a quarter turn. */
  lies: boolean;
}

const DRAWINGS: Record<ClassName, ClassDrawing> = {
  cat: { draw: (p) => quadruped(p, cat), lies: true },
  dog: { draw: (p) => quadruped(p, dog), lies: true },
  duck: { draw: duck, lies: false },
  rabbit: { draw: rabbit, lies: false },
  'teddy bear': { draw: teddy, lies: false },
  robot: { draw: robot, lies: false },
  car: { draw: objectPose(car), lies: false },
  cup: { draw: objectPose(cup), lies: false },
  fish: { draw: objectPose(fish), lies: false },
  box: { draw: objectPose(box), lies: false },
};

/** The fixed colours of accessories, each with an alternative used when the body colour is too close. */
const ACCESSORY_COLOURS: Record<Exclude<AccessoryName, 'none'>, [RGB, RGB]> = {
  hat: [
    [30, 30, 36],
    [236, 236, 230],
  ],
  bow: [
    [228, 30, 90],
    [30, 175, 235],
  ],
  crown: [
    [252, 200, 30],
    [205, 210, 222],
  ],
};

const dist2 = (a: RGB, b: RGB) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

/** The accessory's colour for a body colour: its own, unless that is within reach of the body's. */
export function accessoryColour(accessory: Exclude<AccessoryName, 'none'>, body: RGB): RGB {
  const [own, alt] = ACCESSORY_COLOURS[accessory];
  return dist2(own, body) >= 110 * 110 ? own : alt;
}

function accessoryParts(accessory: AccessoryName, top: Anchor, neck: Anchor, body: RGB): Part[] {
  if (accessory === 'none') return [];
  const colour = accessoryColour(accessory, body);
  if (accessory === 'hat') {
    const { x, y, k } = top;
    const band: RGB = colour[0] < 128 ? [215, 35, 45] : [40, 40, 40];
    return [
      part(roundRect(x, y - 0.02 * k, 0.17 * k, 0.028 * k, 0.012 * k), colour),
      part(roundRect(x, y - 0.15 * k, 0.1 * k, 0.12 * k, 0.015 * k), colour),
      part(roundRect(x, y - 0.075 * k, 0.1 * k, 0.028 * k, 0), band),
    ];
  }
  if (accessory === 'crown') {
    const { x, y, k } = top;
    const w = 0.14 * k;
    const h = 0.17 * k;
    return [
      part(polygon([x - w, y + 0.01, x - w, y - h, x - w / 2, y - h * 0.45, x, y - h * 1.05, x + w / 2, y - h * 0.45, x + w, y - h, x + w, y + 0.01]), colour),
      part(circle(x, y - h * 0.25, 0.03 * k), [220, 30, 60]),
    ];
  }
  const { x, y, k } = neck;
  const w = 0.14 * k;
  const h = 0.08 * k;
  return [
    part(polygon([x, y, x - w, y - h, x - w, y + h]), colour),
    part(polygon([x, y, x + w, y - h, x + w, y + h]), colour),
    part(circle(x, y, 0.04 * k), colour),
  ];
}

/** Height of a jump above the ground, in the subject's units. */
export const JUMP_LIFT = 0.32;

/** The parts, turn and lift of one subject in a pose, with its accessory. */
export function buildSubject(cls: ClassName, action: ActionName, accessory: AccessoryName, body: RGB): SubjectModel {
  const drawing = DRAWINGS[cls];
  const pose: Pose = action === 'upside down' || (action === 'lying down' && !drawing.lies) ? 'standing' : action;
  const d = drawing.draw(pose);
  const rot = action === 'upside down' ? Math.PI : action === 'lying down' && !drawing.lies ? -Math.PI / 2 : (d.rot ?? 0);
  return {
    parts: [...d.parts, ...accessoryParts(accessory, d.top, d.neck, body)],
    rot,
    lift: action === 'jumping' ? JUMP_LIFT : 0,
  };
}
