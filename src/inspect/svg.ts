/**
 * Draws a machine description as a standalone SVG, without a layout library. Top-level states
 * defined before the first compound state form the left column, and the ones after it form the
 * right column. Each compound state is a box in the middle with its children stacked inside.
 * Transitions between two states are merged into one curved arrow labelled with their triggers.
 * A transition back to its own state is listed inside the state's box.
 */
import type {
  MachineDescription,
  StateDescription,
  TransitionDescription,
} from "../machine/diagram.js"

const STATE_WIDTH = 190
const STATE_HEIGHT = 50
const CHILD_PITCH = 104
const COMPOUND_WIDTH = 300
const COMPOUND_HEADER = 60
const COLUMN_GAP = 250
const MARGIN = 40
const LABEL_MAX_CHARS = 34

/** A placed box. */
interface Box {
  readonly state: StateDescription
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

const escapeXml = (text: string): string =>
  text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")

const shorten = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`

const center = (box: Box) => ({ x: box.x + box.width / 2, y: box.y + box.height / 2 })

/** Finds the point where the ray from the box center towards `toward` leaves the box. */
const borderPoint = (box: Box, toward: { x: number; y: number }) => {
  const c = center(box)
  const dx = toward.x - c.x
  const dy = toward.y - c.y
  if (dx === 0 && dy === 0) return c
  const scale = Math.min(
    dx === 0 ? Number.POSITIVE_INFINITY : box.width / 2 / Math.abs(dx),
    dy === 0 ? Number.POSITIVE_INFINITY : box.height / 2 / Math.abs(dy),
  )
  return { x: c.x + dx * scale, y: c.y + dy * scale }
}

/** Tells whether `inner` lies inside `outer`. */
const contains = (outer: Box, inner: Box): boolean =>
  inner.x >= outer.x &&
  inner.y >= outer.y &&
  inner.x + inner.width <= outer.x + outer.width &&
  inner.y + inner.height <= outer.y + outer.height

/** Tells whether the segment from `a` to `b` passes through `box`, sampled at 20 points. */
const segmentCrosses = (box: Box, a: { x: number; y: number }, b: { x: number; y: number }) => {
  for (let i = 1; i < 20; i++) {
    const x = a.x + ((b.x - a.x) * i) / 20
    const y = a.y + ((b.y - a.y) * i) / 20
    if (x > box.x && x < box.x + box.width && y > box.y && y < box.y + box.height) return true
  }
  return false
}

/** Places every state; returns the boxes by state id and the canvas size. */
const layout = (description: MachineDescription) => {
  const topLevel = description.states.filter((state) => state.parent === description.id)
  const firstCompound = topLevel.findIndex(
    (state) => state.type !== "atomic" && state.type !== "final",
  )
  const compounds = topLevel.filter(
    (state) => state.type === "compound" || state.type === "parallel",
  )
  const isLeaf = (state: StateDescription) => !compounds.includes(state)
  const left = topLevel.filter((state, index) => isLeaf(state) && index < firstCompound)
  const right = topLevel.filter(
    (state, index) => isLeaf(state) && (firstCompound === -1 || index > firstCompound),
  )
  const childrenOf = (parent: StateDescription) =>
    description.states.filter((state) => state.parent === parent.id)

  const compoundHeights = compounds.map(
    (compound) => COMPOUND_HEADER + childrenOf(compound).length * CHILD_PITCH,
  )
  const middleHeight = compoundHeights.reduce((sum, height) => sum + height + MARGIN, -MARGIN)
  const columnHeight = (count: number) => count * STATE_HEIGHT + (count - 1) * 60
  // The first and last state of each side column sit above and below the compound boxes, so
  // arrows between them pass around the compound instead of through it.
  const height =
    Math.max(
      middleHeight + 2 * (STATE_HEIGHT + MARGIN),
      columnHeight(left.length),
      columnHeight(right.length),
    ) +
    2 * MARGIN

  const boxes = new Map<string, Box>()
  const placeColumn = (states: ReadonlyArray<StateDescription>, x: number) => {
    const gap =
      states.length <= 1
        ? 0
        : (height - 2 * MARGIN - states.length * STATE_HEIGHT) / (states.length - 1)
    states.forEach((state, index) => {
      const y =
        states.length === 1 ? (height - STATE_HEIGHT) / 2 : MARGIN + index * (STATE_HEIGHT + gap)
      boxes.set(state.id, { state, x, y, width: STATE_WIDTH, height: STATE_HEIGHT })
    })
  }

  const hasLeft = left.length > 0
  const middleX = MARGIN + (hasLeft ? STATE_WIDTH + COLUMN_GAP : 0)
  const rightX = middleX + (compounds.length > 0 ? COMPOUND_WIDTH + COLUMN_GAP : 0)
  placeColumn(left, MARGIN)
  placeColumn(right, rightX)
  let y = (height - middleHeight) / 2
  compounds.forEach((compound, index) => {
    const compoundHeight = compoundHeights[index] ?? 0
    boxes.set(compound.id, {
      state: compound,
      x: middleX,
      y,
      width: COMPOUND_WIDTH,
      height: compoundHeight,
    })
    childrenOf(compound).forEach((child, childIndex) => {
      boxes.set(child.id, {
        state: child,
        x: middleX + (COMPOUND_WIDTH - STATE_WIDTH) / 2,
        y: y + COMPOUND_HEADER + childIndex * CHILD_PITCH,
        width: STATE_WIDTH,
        height: STATE_HEIGHT,
      })
    })
    y += compoundHeight + MARGIN
  })
  const width = (right.length > 0 ? rightX + STATE_WIDTH : rightX - COLUMN_GAP) + MARGIN
  return { boxes, width, height }
}

/** Distinct triggers of a group of transitions, in definition order. */
const triggersOf = (transitions: ReadonlyArray<TransitionDescription>): string[] => [
  ...new Set(transitions.map((transition) => transition.trigger)),
]

/** The dot-free path of a state id below the machine, such as `authorizing.discovering`. */
export const statePath = (state: StateDescription): string => state.path.join(".")

/**
 * Renders `description` as an SVG element. Each state is a `<g class="state">` with
 * `data-state` set to its path (`authorizing.discovering`). Each arrow is a `<g class="edge">`
 * with `data-source` and `data-target` paths, so a page can highlight both.
 */
export const renderStatechartSvg = (description: MachineDescription): string => {
  const { boxes, width, height } = layout(description)
  const groups = new Map<string, TransitionDescription[]>()
  const loops = new Map<string, TransitionDescription[]>()
  for (const transition of description.transitions) {
    const targets = transition.targets.length === 0 ? [transition.source] : transition.targets
    for (const target of targets) {
      if (target === transition.source) {
        loops.set(target, [...(loops.get(target) ?? []), transition])
        continue
      }
      const key = `${transition.source} ${target}`
      groups.set(key, [...(groups.get(key) ?? []), transition])
    }
  }

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Statechart ${escapeXml(description.id)}">`,
    "<defs>",
    '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker>',
    "</defs>",
  ]

  // Compound boxes first, then the arrows, then the other boxes: arrows cross compound boxes
  // but pass under the state boxes, so state names stay readable.
  const isCompound = (box: Box) => box.state.type === "compound" || box.state.type === "parallel"
  const drawBox = (box: Box) => {
    const path = statePath(box.state)
    const loopText = triggersOf(loops.get(box.state.id) ?? [])
    const compound = isCompound(box)
    const title = [
      box.state.id,
      ...box.state.invoke.map((invoke) => `invokes ${invoke.src}`),
      ...(loopText.length === 0 ? [] : [`stays on ${loopText.join(", ")}`]),
    ].join("\n")
    parts.push(
      `<g class="state${compound ? " compound" : ""}" data-state="${escapeXml(path)}" id="state-${escapeXml(path)}">`,
      `<title>${escapeXml(title)}</title>`,
      `<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" rx="10"/>`,
      `<text class="name" x="${box.x + box.width / 2}" y="${box.y + (compound ? 22 : 21)}">${escapeXml(box.state.key)}</text>`,
    )
    if (loopText.length > 0) {
      parts.push(
        `<text class="loop" x="${box.x + box.width / 2}" y="${box.y + 38}">↻ ${escapeXml(shorten(loopText.join(", "), LABEL_MAX_CHARS))}</text>`,
      )
    }
    parts.push("</g>")
  }

  const compoundBoxes = [...boxes.values()].filter(isCompound)
  for (const box of compoundBoxes) drawBox(box)
  for (const [key, transitions] of groups) {
    const [sourceId = "", targetId = ""] = key.split(" ")
    const source = boxes.get(sourceId)
    const target = boxes.get(targetId)
    if (source === undefined || target === undefined) continue
    // Arrows in both directions between two states bend to opposite sides.
    const bend = groups.has(`${targetId} ${sourceId}`) ? 28 : 14
    const from = borderPoint(source, center(target))
    const to = borderPoint(target, center(source))
    const length = Math.hypot(to.x - from.x, to.y - from.y) || 1
    const control = {
      x: (from.x + to.x) / 2 + (-(to.y - from.y) / length) * bend,
      y: (from.y + to.y) / 2 + ((to.x - from.x) / length) * bend,
    }
    // A label in the middle of an arrow that crosses a compound box would land among its
    // children, so such labels sit near the arrow's start instead.
    const crossing = compoundBoxes.some(
      (box) => !contains(box, source) && !contains(box, target) && segmentCrosses(box, from, to),
    )
    const t = crossing ? 0.2 : 0.5
    const label = {
      x: (1 - t) ** 2 * from.x + 2 * t * (1 - t) * control.x + t ** 2 * to.x,
      y: (1 - t) ** 2 * from.y + 2 * t * (1 - t) * control.y + t ** 2 * to.y,
    }
    const triggers = triggersOf(transitions)
    const guards = transitions.flatMap((transition) =>
      transition.guard === undefined ? [] : [`${transition.trigger} [${transition.guard}]`],
    )
    parts.push(
      `<g class="edge" data-source="${escapeXml(statePath(source.state))}" data-target="${escapeXml(statePath(target.state))}">`,
      `<title>${escapeXml(`${source.state.key} → ${target.state.key}\n${[...triggers, ...guards].join("\n")}`)}</title>`,
      `<path d="M${from.x.toFixed(1)},${from.y.toFixed(1)} Q${control.x.toFixed(1)},${control.y.toFixed(1)} ${to.x.toFixed(1)},${to.y.toFixed(1)}" marker-end="url(#arrow)"/>`,
      `<text x="${label.x.toFixed(1)}" y="${label.y.toFixed(1)}">${escapeXml(shorten(triggers.join(", "), LABEL_MAX_CHARS))}</text>`,
      "</g>",
    )
  }
  for (const box of boxes.values()) if (!isCompound(box)) drawBox(box)
  parts.push("</svg>")
  return parts.join("\n")
}
