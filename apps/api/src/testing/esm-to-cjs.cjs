// Jest transform for the few ESM-only packages that CommonJS code in the fastify stack require()s
// (cookie 2 from light-my-request, content-disposition 3 from @fastify/static): plain Node 20.19+ loads
// them through require(esm), jest's module runtime does not. TypeScript turns them into CommonJS.
const ts = require('typescript');

module.exports = {
  process(source, filename) {
    const { outputText } = ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, allowJs: true, esModuleInterop: true },
    });
    return { code: outputText };
  },
};
