export { ImagingError, type ImagingErrorCode } from './errors.js';
export type { Box, FloatTensor, Mask, Raster, RgbaImage, RgbImage } from './types.js';
export {
  DEFAULT_MAX_PIXELS,
  decode,
  decodeRgba,
  encodeJpeg,
  encodePng,
  readImage,
  sniffImageType,
  writePng,
  type DecodeOptions,
  type ImageType,
  type JpegOptions,
  type PngOptions,
} from './codec.js';
export {
  area,
  binarize,
  boundingBox,
  decodeMask,
  emptyMask,
  intersection,
  invert,
  iou,
  maskFromImage,
  maskToImage,
  resizeMask,
  subtract,
  union,
} from './mask.js';
export {
  connectedComponents,
  dilate,
  erode,
  fillHoles,
  keepLargestComponent,
  removeSmallComponents,
  squaredDistanceToSet,
  type Component,
  type Components,
  type Connectivity,
  type MorphologyOptions,
  type StructuringElement,
} from './morphology.js';
export {
  crop,
  fitCover,
  fitToSquare,
  flipHorizontal,
  resizeImage,
  resizeRaster,
  transformPoint,
  type FitTransform,
  type Fitted,
  type ResizeKernel,
  type ResizeOptions,
} from './geometry.js';
export { alphaComposite, blend, pasteSubject, type PasteOptions, type Pasted } from './composite.js';
export { imageToTensor, maskToTensor, tensorToImage } from './tensor.js';
export { colormapColor, heatmapOverlay, type Colormap, type HeatmapOptions } from './heatmap.js';
export { imageGrid, type GridOptions } from './grid.js';
export { resizeMap } from './resample.js';
