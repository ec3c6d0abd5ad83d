/**
 * `deno lint` rule lab/function-length: no function longer than MAX_LINES lines, not counting the
 * lines of template literals inside it (the kernels' WGSL sources). A long function is a pipeline
 * whose steps want names; the review that set the limit is in the README's layout section.
 */

const MAX_LINES = 120;

type Range = [number, number];

const plugin: Deno.lint.Plugin = {
  name: "lab",
  rules: {
    "function-length": {
      create(context) {
        const text = context.sourceCode.text;
        const lineAt = (offset: number) => {
          let line = 1;
          for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
          return line;
        };
        const functions: Deno.lint.Node[] = [];
        const templates: Range[] = [];
        const collect = (node: Deno.lint.Node) => functions.push(node);
        return {
          FunctionDeclaration: collect,
          FunctionExpression: collect,
          ArrowFunctionExpression: collect,
          TemplateLiteral(node) {
            templates.push(node.range);
          },
          "Program:exit"() {
            for (const node of functions) {
              const [start, end] = node.range;
              let lines = lineAt(end) - lineAt(start) + 1;
              for (const [a, b] of templates) {
                if (a >= start && b <= end) lines -= lineAt(b) - lineAt(a) + 1;
              }
              if (lines > MAX_LINES) {
                context.report({
                  node,
                  message:
                    `function is ${lines} lines long (outside template literals); the limit is ${MAX_LINES}`,
                  hint: "cut it into named steps",
                });
              }
            }
          },
        };
      },
    },
  },
};

export default plugin;
