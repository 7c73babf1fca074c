/**
 * The built-in prompt library (METHOD.md "Prompt-and-image augmentation", step 2 without a language model):
 * plain, action and interaction templates per class family, in the spirit of the paper's appendix
 * examples (`The <asset0> is running.`, `<asset0> is throwing the <asset1>.`). Slot {0} is the acting
 * subject, {1} the other one. Actions and interactions combine with settings to give enough distinct
 * prompts for 30-50 per personalization.
 */

export type ClassFamily = 'animal' | 'toy' | 'object' | 'person' | 'vehicle' | 'food' | 'plant' | 'generic';

export const CLASS_FAMILIES: readonly ClassFamily[] = ['animal', 'toy', 'object', 'person', 'vehicle', 'food', 'plant', 'generic'];

const FAMILY_WORDS: Record<Exclude<ClassFamily, 'generic'>, readonly string[]> = {
  animal: [
    'dog',
    'puppy',
    'cat',
    'kitten',
    'panda',
    'bear',
    'rabbit',
    'bunny',
    'fox',
    'owl',
    'bird',
    'elephant',
    'lion',
    'tiger',
    'monkey',
    'penguin',
    'turtle',
    'horse',
    'sheep',
    'pig',
    'mouse',
    'duck',
    'cow',
    'giraffe',
    'squirrel',
    'hamster',
    'frog',
    'deer',
    'wolf',
    'parrot',
    'chicken',
    'goat',
    'koala',
    'zebra',
    'raccoon',
    'otter',
    'hedgehog',
    'animal',
  ],
  toy: ['toy', 'teddy', 'plush', 'plushie', 'stuffed', 'doll', 'figurine', 'robot', 'puppet', 'lego'],
  object: [
    'bowl',
    'cup',
    'mug',
    'vase',
    'teapot',
    'plate',
    'bottle',
    'box',
    'bag',
    'backpack',
    'basket',
    'pot',
    'jar',
    'bucket',
    'kettle',
    'can',
    'glass',
    'shoe',
    'shoes',
    'boot',
    'hat',
    'clock',
    'lamp',
    'book',
    'candle',
    'ball',
    'chair',
    'sofa',
    'table',
    'pillow',
    'sculpture',
    'statue',
    'object',
    'sunglasses',
    'guitar',
    'camera',
    'phone',
    'watch',
  ],
  person: ['person', 'man', 'woman', 'child', 'boy', 'girl', 'baby', 'kid', 'lady', 'guy', 'people', 'player'],
  vehicle: ['car', 'truck', 'bus', 'bicycle', 'bike', 'motorcycle', 'boat', 'train', 'airplane', 'plane', 'scooter', 'tractor', 'van'],
  food: ['cake', 'apple', 'banana', 'pizza', 'burger', 'donut', 'cookie', 'sandwich', 'bread', 'cupcake', 'strawberry', 'pie', 'fruit'],
  plant: ['plant', 'flower', 'flowers', 'cactus', 'tree', 'succulent', 'rose', 'tulip', 'sunflower', 'bonsai', 'fern'],
};

const WORD_FAMILY = new Map<string, ClassFamily>(
  (Object.entries(FAMILY_WORDS) as [ClassFamily, readonly string[]][]).flatMap(([f, ws]) => ws.map((w) => [w, f] as [string, ClassFamily])),
);

/** Words after which a noun phrase only modifies its head (`dog with a red collar`). */
const MODIFIER_START = new Set(['with', 'of', 'in', 'on', 'holding', 'wearing', 'that', 'which', 'from']);

/**
 * The family of a class word or noun phrase: a toy marker anywhere wins (`toy panda`, `teddy bear` are
 * toys), else the last known word before any modifier (`small green bowl with a lid` -> object), else
 * any known word, else 'generic'.
 */
export function classFamily(phrase: string): ClassFamily {
  const words = phrase.toLowerCase().match(/[a-z]+/g) ?? [];
  const singular = (w: string): string => (WORD_FAMILY.has(w) ? w : w.endsWith('s') && WORD_FAMILY.has(w.slice(0, -1)) ? w.slice(0, -1) : w);
  const known = words.map(singular);
  if (known.some((w) => WORD_FAMILY.get(w) === 'toy')) return 'toy';
  const cut = known.findIndex((w) => MODIFIER_START.has(w));
  const head = (cut < 0 ? known : known.slice(0, cut)).filter((w) => WORD_FAMILY.has(w)).at(-1);
  const family = WORD_FAMILY.get(head ?? '') ?? WORD_FAMILY.get(known.find((w) => WORD_FAMILY.has(w)) ?? '');
  return family ?? 'generic';
}

/** Families whose subjects act on others (they take slot {0} of an interaction when paired with a non-agent). */
export const AGENT_FAMILIES: ReadonlySet<ClassFamily> = new Set(['animal', 'toy', 'person']);

/** Settings appended to actions and interactions ('' = none). */
export const SETTINGS: readonly string[] = [
  '',
  ' on the beach',
  ' in a park',
  ' in the snow',
  ' in a forest',
  ' on a wooden table',
  ' in a living room',
  ' on a city street',
  ' in a garden',
  ' at sunset',
];

/** Plain prompts: static changes of style, place and framing (the paper's "Plain" category). */
export const PLAIN_TEMPLATES: readonly string[] = [
  'a photo of the {0}',
  'a close up photo of the {0}',
  'the {0} on a wooden table',
  'the {0} in a jungle',
  'the {0} on the beach',
  'the {0} in the snow',
  'an oil painting of the {0}',
  'a watercolor painting of the {0}',
  'a pencil sketch of the {0}',
  'a cartoon drawing of the {0}',
  'the {0} at the eiffel tower',
  'the {0} in times square',
  'the {0} on a shelf in a library',
  'the {0} in a garden with flowers',
  'the {0} on a mountain at sunset',
  'the {0} on the grass in a park',
  'a pixel art picture of the {0}',
  'the {0} on a street in tokyo at night',
];

/** Family-specific plain additions (appearance changes that suit the family). */
export const FAMILY_PLAIN: Partial<Record<ClassFamily, readonly string[]>> = {
  animal: ['the {0} wearing a red hat', 'the {0} wearing sunglasses'],
  toy: ['the {0} wearing a red hat', 'the {0} in a nurse suit'],
  person: ['the {0} in a firefighter uniform', 'the {0} wearing a red hat'],
  object: ['the {0} made of glass', 'a golden {0}'],
  food: ['the {0} on a white plate'],
  plant: ['the {0} in a ceramic pot'],
};

/** Single-subject actions per family, without a setting ("Action": one subject acting). */
export const FAMILY_ACTIONS: Record<ClassFamily, readonly string[]> = {
  animal: [
    'the {0} is running',
    'the {0} is jumping',
    'the {0} is sleeping',
    'the {0} is sitting',
    'the {0} is swimming',
    'the {0} is eating a carrot',
    'the {0} is dancing',
    'the {0} is playing with a ball',
    'the {0} is climbing a tree',
    'the {0} is lying on its back',
    'the {0} is drinking water',
  ],
  toy: [
    'the {0} is running',
    'the {0} is jumping',
    'the {0} is dancing',
    'the {0} is sleeping',
    'the {0} is reading a book',
    'the {0} is playing a guitar',
    'the {0} is riding a bicycle',
    'the {0} is flying a kite',
    'the {0} is eating a carrot',
    'the {0} is waving',
    'the {0} is sitting',
  ],
  person: [
    'the {0} is running',
    'the {0} is jumping',
    'the {0} is dancing',
    'the {0} is reading a book',
    'the {0} is playing a guitar',
    'the {0} is riding a bicycle',
    'the {0} is flying a kite',
    'the {0} is sitting',
    'the {0} is waving',
    'the {0} is swimming',
  ],
  object: [
    'the {0} is floating in water',
    'the {0} is falling off a shelf',
    'the {0} is filled with flowers',
    'the {0} is spinning',
    'the {0} is rolling down a hill',
    'the {0} is filled with water',
    'the {0} is lying on its side',
    'the {0} is half buried in sand',
    'the {0} is flying through the sky',
  ],
  vehicle: [
    'the {0} is driving on a road',
    'the {0} is parked',
    'the {0} is crossing a bridge',
    'the {0} is driving through rain',
    'the {0} is jumping over a ramp',
    'the {0} is covered in mud',
  ],
  food: ['the {0} is sliced in half', 'the {0} is falling onto a plate', 'the {0} is melting', 'the {0} is floating in water', 'the {0} is being served'],
  plant: ['the {0} is blooming', 'the {0} is swaying in the wind', 'the {0} is growing in a pot', 'the {0} is covered in snow', 'the {0} is wet with rain'],
  generic: [
    'the {0} is floating in water',
    'the {0} is spinning',
    'the {0} is falling through the air',
    'the {0} is lying on its side',
    'the {0} is flying through the sky',
    'the {0} is covered in snow',
  ],
};

/** Interactions where the acting subject {0} is of the keyed family; `object` when {1} is a non-agent, `agent` otherwise. */
export const FAMILY_INTERACTIONS: Partial<Record<ClassFamily, { object: readonly string[]; agent: readonly string[] }>> = {
  animal: {
    object: [
      'the {0} is playing with the {1}',
      'the {0} is sniffing the {1}',
      'the {0} is pushing the {1}',
      'the {0} is sitting inside the {1}',
      'the {0} is carrying the {1}',
      'the {0} is looking into the {1}',
      'the {0} is balancing the {1} on its head',
      'the {0} is sleeping next to the {1}',
    ],
    agent: [
      'the {0} is playing with the {1}',
      'the {0} is hugging the {1}',
      'the {0} is chasing the {1}',
      'the {0} is dancing with the {1}',
      'the {0} is sleeping next to the {1}',
      'the {0} is looking at the {1}',
    ],
  },
  toy: {
    object: [
      'the {0} is throwing the {1}',
      'the {0} is washing the {1}',
      'the {0} is looking into the {1}',
      'the {0} is carrying the {1}',
      'the {0} is painting the {1}',
      'the {0} is balancing the {1} on its head',
      'the {0} is sitting inside the {1}',
      'the {0} is hiding behind the {1}',
      'the {0} is placing the {1} on a table',
      'the {0} is playing with the {1}',
    ],
    agent: [
      'the {0} is hugging the {1}',
      'the {0} is playing with the {1}',
      'the {0} is dancing with the {1}',
      'the {0} is riding on the {1}',
      'the {0} is chasing the {1}',
      'the {0} is reading a book to the {1}',
    ],
  },
  person: {
    object: [
      'the {0} is holding the {1}',
      'the {0} is carrying the {1}',
      'the {0} is washing the {1}',
      'the {0} is painting the {1}',
      'the {0} is looking at the {1}',
      'the {0} is lifting the {1} above the head',
      'the {0} is sitting next to the {1}',
    ],
    agent: [
      'the {0} is hugging the {1}',
      'the {0} is playing with the {1}',
      'the {0} is feeding the {1}',
      'the {0} is walking with the {1}',
      'the {0} is taking a photo of the {1}',
    ],
  },
  vehicle: {
    object: ['the {0} is driving past the {1}', 'the {0} is carrying the {1} on its roof', 'the {0} is parked next to the {1}'],
    agent: ['the {0} is driving past the {1}', 'the {1} is sitting on the hood of the {0}', 'the {1} is riding on the roof of the {0}'],
  },
};

/** Spatial interactions any two subjects can take part in. */
export const SPATIAL_INTERACTIONS: readonly string[] = [
  'the {0} sitting next to the {1}',
  'the {1} on top of the {0}',
  'the {0} and the {1} on a wooden table',
  'the {0} in front of the {1}',
  'the {0} behind the {1}',
  'the {0} and the {1} together',
  'the {0} beside the {1}',
];

/** Interaction templates for an ordered pair ({0} acts on {1}). */
export function interactionTemplates(actor: ClassFamily, other: ClassFamily): string[] {
  const own = FAMILY_INTERACTIONS[actor];
  const specific = own ? (AGENT_FAMILIES.has(other) || other === 'vehicle' ? own.agent : own.object) : [];
  return [...specific, ...SPATIAL_INTERACTIONS];
}

/** Plain templates for a subject of this family. */
export function plainTemplates(family: ClassFamily): string[] {
  return [...PLAIN_TEMPLATES, ...(FAMILY_PLAIN[family] ?? [])];
}
