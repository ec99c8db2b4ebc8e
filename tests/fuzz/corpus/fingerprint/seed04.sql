SELECT "col 1", `t2`.[x y] FROM "my""table" -- tail comment
 WHERE c1 = -1.5e-3