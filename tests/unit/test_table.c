/*
 * test_table.c - aligned text tables (libstream/tools/table.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "stream/error.h"
#include "stream/table.h"

/* Renders t and compares with want (NUL-terminated). */
static void assert_renders(const stream_table *t, const char *want)
{
    stream_buf out;
    stream_buf_init(&out);
    assert_int_equal(stream_table_render(t, &out), 0);
    stream_buf_put_u8(&out, 0);
    assert_string_equal((const char *)out.data, want);
    stream_buf_release(&out);
}

static void test_columns_are_padded_to_the_widest_cell(void **state)
{
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "NAME", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "PARTITIONS", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "INTERNAL", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, "orders");
    stream_table_cellf(&t, "%d", 3);
    stream_table_cell(&t, "no");
    stream_table_cell(&t, "__consumer_offsets");
    stream_table_cellf(&t, "%d", 50);
    stream_table_cell(&t, "yes");
    assert_int_equal(stream_table_rows(&t), 2);
    assert_renders(&t, "NAME                PARTITIONS  INTERNAL\n"
                       "orders                       3  no\n"
                       "__consumer_offsets          50  yes\n");
    stream_table_release(&t);
}

static void test_last_column_is_never_padded(void **state)
{
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "A", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "B", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, "x");
    stream_table_cell(&t, "long value");
    stream_table_cell(&t, "y");
    stream_table_cell(&t, "v");
    assert_renders(&t, "A  B\nx  long value\ny  v\n");
    stream_table_release(&t);
}

static void test_width_counts_utf8_code_points(void **state)
{
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "K", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "V", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, "\xc3\xa9t\xc3\xa9"); /* "été": 3 code points, 5 bytes */
    stream_table_cell(&t, "1");
    stream_table_cell(&t, "abcd");
    stream_table_cell(&t, "2");
    assert_renders(&t, "K     V\n\xc3\xa9t\xc3\xa9   1\nabcd  2\n");
    stream_table_release(&t);
}

static void test_control_characters_are_shown_as_question_marks(void **state)
{
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "NAME", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, "a\nb\x1b[2Jc");
    assert_renders(&t, "NAME\na?b?[2Jc\n");
    stream_table_release(&t);
}

static void test_short_last_row_and_null_cells(void **state)
{
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "A", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "B", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, NULL);
    stream_table_cell(&t, "b");
    stream_table_cell(&t, "10");
    assert_int_equal(stream_table_rows(&t), 1);
    assert_renders(&t, " A  B\n -  b\n10\n");
    stream_table_release(&t);
}

/* Empty cells at the end of a row (an error column with no error, a
 * right-aligned number left blank) leave no separator or padding behind:
 * no line ends in a space. */
static void test_empty_last_cells_leave_no_trailing_spaces(void **state)
{
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "TOPIC", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "OFFSET", STREAM_ALIGN_RIGHT);
    stream_table_column(&t, "ERROR", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, "orders");
    stream_table_cell(&t, "12");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "a");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "7");
    stream_table_cell(&t, "unknown topic");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "");
    assert_renders(&t, "TOPIC   OFFSET  ERROR\n"
                       "orders      12\n"
                       "a\n"
                       "             7  unknown topic\n"
                       "\n");
    stream_table_release(&t);

    /* A right-aligned last column: its padding goes before the text, so an
     * empty cell would be nothing but spaces. */
    stream_table_init(&t);
    stream_table_column(&t, "NAME", STREAM_ALIGN_LEFT);
    stream_table_column(&t, "LAG", STREAM_ALIGN_RIGHT);
    stream_table_cell(&t, "g");
    stream_table_cell(&t, "");
    stream_table_cell(&t, "h");
    stream_table_cell(&t, "5");
    assert_renders(&t, "NAME  LAG\ng\nh       5\n");
    stream_table_release(&t);
}

static void test_long_formatted_cells_are_kept_whole(void **state)
{
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    stream_table t;
    stream_table_init(&t);
    stream_table_column(&t, "V", STREAM_ALIGN_LEFT);
    stream_table_cellf(&t, "%s!", big);
    stream_buf out;
    stream_buf_init(&out);
    assert_int_equal(stream_table_render(&t, &out), 0);
    assert_int_equal(out.len, 2 + 1000 + 1); /* "V\n" + cell + "!" + "\n" */
    assert_int_equal(out.data[out.len - 2], '!');
    stream_buf_release(&out);
    stream_table_release(&t);
}

static void test_misuse_fails_the_render(void **state)
{
    stream_table t;
    stream_buf out;
    stream_buf_init(&out);
    /* A cell before any column. */
    stream_table_init(&t);
    stream_table_cell(&t, "x");
    assert_int_equal(stream_table_render(&t, &out), STREAM_EINVAL);
    stream_table_release(&t);
    /* A column after a cell. */
    stream_table_init(&t);
    stream_table_column(&t, "A", STREAM_ALIGN_LEFT);
    stream_table_cell(&t, "x");
    stream_table_column(&t, "B", STREAM_ALIGN_LEFT);
    assert_int_equal(stream_table_render(&t, &out), STREAM_EINVAL);
    stream_table_release(&t);
    /* No columns at all renders as nothing. */
    stream_table_init(&t);
    assert_int_equal(stream_table_render(&t, &out), 0);
    assert_int_equal(out.len, 0);
    stream_table_release(&t);
    stream_buf_release(&out);
}

static void test_human_bytes_use_binary_units(void **state)
{
    char b[32];
    assert_string_equal(stream_table_human_bytes(-1, b, sizeof(b)), "-");
    assert_string_equal(stream_table_human_bytes(0, b, sizeof(b)), "0 B");
    assert_string_equal(stream_table_human_bytes(1023, b, sizeof(b)), "1023 B");
    assert_string_equal(stream_table_human_bytes(1024, b, sizeof(b)), "1.0 KiB");
    assert_string_equal(stream_table_human_bytes(1536, b, sizeof(b)), "1.5 KiB");
    assert_string_equal(stream_table_human_bytes(1048575, b, sizeof(b)), "1.0 MiB");
    assert_string_equal(stream_table_human_bytes(INT64_C(5) << 30, b, sizeof(b)), "5.0 GiB");
    assert_string_equal(stream_table_human_bytes(INT64_MAX, b, sizeof(b)), "8.0 EiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_are_padded_to_the_widest_cell),
        cmocka_unit_test(test_last_column_is_never_padded),
        cmocka_unit_test(test_width_counts_utf8_code_points),
        cmocka_unit_test(test_control_characters_are_shown_as_question_marks),
        cmocka_unit_test(test_short_last_row_and_null_cells),
        cmocka_unit_test(test_empty_last_cells_leave_no_trailing_spaces),
        cmocka_unit_test(test_long_formatted_cells_are_kept_whole),
        cmocka_unit_test(test_misuse_fails_the_render),
        cmocka_unit_test(test_human_bytes_use_binary_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
