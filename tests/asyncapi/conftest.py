"""The npm packages of the AsyncAPI check live here too; pytest has nothing to find in them."""

collect_ignore = ["node_modules"]
