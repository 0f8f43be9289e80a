// Chat channels added by skills, one import line each: `hako skill add <name>` adds its
// line here and `hako skill remove <name>` takes it out again. Do not reorder by hand.
