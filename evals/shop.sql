-- The database of the public evaluation set (loaded into a fresh SQLite file per task).
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
INSERT INTO users (name, city, age) VALUES ('Alice', 'Paris', 34), ('Bob', 'Berlin', 28), ('Carol', 'Paris', 45), ('Dave', 'Rome', 23);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, item TEXT, price REAL);
INSERT INTO orders (user_id, item, price) VALUES (1, 'lamp', 25.0), (1, 'desk', 150.0), (2, 'chair', 80.0), (3, 'lamp', 25.0), (4, 'book', 12.5);
