"""Dynamic supervision of vehicle cylinders: JT/T 808 terminals bound to their vehicles, the vehicle rules,
track storage and the queries the pages and the API read."""
